// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice How a tensor appears among a proof's public instances.
enum Visibility {
    /// @notice Every element is a public instance.
    Public,
    /// @notice One public instance: the Poseidon hash of the elements (as EZKL computes it).
    Hashed
}

/// @title IModelRegistry
/// @notice Models that gateways serve: their circuit (the verifying-key artifact, checked against the
///         one verifier the protocol pins on this chain), input/output schema and visibility, where
///         their artifacts are stored and what they hash to, compute units, owner, and published
///         backtests. A model's fee per inference is its compute units times the price per compute
///         unit of its pool, which the registry owner sets ({unitPriceOf}).
/// @dev Model ids are derived from the registering account and the model's name
///      ({modelIdOf}): nobody can take a name another account uses, and the same creator gets the
///      same id on every chain.
interface IModelRegistry {
    // ─────────────────────────────── Types ────────────────────────────────

    /// @notice Where a model's artifacts are stored and their content hashes (sha256). Nodes fetch
    ///         the files from storage and refuse any whose hash differs from the one recorded here.
    struct ArtifactRefs {
        /// @notice sha256 of the model's manifest.json, which pins every artifact file: the model's
        ///         artifacts hash, which a consumer may pin in its request.
        bytes32 manifestHash;
        /// @notice Storage id (e.g. an Arweave transaction id) of the artifact index: the manifest
        ///         and the storage id of every file.
        bytes32 index;
        /// @notice sha256 of the compiled circuit (model.compiled).
        bytes32 compiledHash;
        /// @notice sha256 of the verifying key (vk.key); provers check that the key they derive
        ///         from the compiled circuit and the SRS hashes to it.
        bytes32 vkHash;
        /// @notice sha256 of the circuit settings (settings.json).
        bytes32 settingsHash;
        /// @notice sha256 of the structured reference string the keys are derived with.
        bytes32 srsHash;
    }

    /// @notice The parts of a model that define its circuit. Changing any of them bumps the model's
    ///         version, and requests made against an older version can no longer be fulfilled.
    struct CircuitParams {
        /// @notice The model's verifying-key artifact (VKA) contract on this chain.
        address vka;
        /// @notice keccak256 of the VKA's runtime code; registration fails unless it matches.
        bytes32 vkaCodeHash;
        /// @notice Where the artifacts are stored and what they hash to.
        ArtifactRefs artifacts;
        /// @notice Input tensor shape, e.g. [1, 4].
        uint32[] inputShape;
        /// @notice Output tensor shape, e.g. [1, 3].
        uint32[] outputShape;
        /// @notice Fixed-point scale of the inputs: a real x is passed as round(x * 2^inputScale).
        uint8 inputScale;
        /// @notice Fixed-point scale of the outputs.
        uint8 outputScale;
        /// @notice The largest |input element| (at the input scale) the circuit is sized for.
        uint64 maxAbsInput;
        /// @notice Public: a request carries the input. Hashed: it carries the input's Poseidon
        ///         commitment and a storage reference to the input.
        Visibility inputVisibility;
        /// @notice Public: the result carries the output. Hashed: its Poseidon commitment (the
        ///         output itself is in storage).
        Visibility outputVisibility;
        /// @notice Whether the circuit's SRS was generated locally (its secret not destroyed):
        ///         anyone holding it can forge proofs. Only registries that allow it accept it.
        bool insecureSrs;
        /// @notice The same model compiled with a batch dimension (sizes ascending, each above 1):
        ///         one proof for `size` requests. Part of the circuit: the manifest the artifacts
        ///         hash pins lists them, and changing them bumps the version like any circuit change.
        BatchCircuit[] batches;
    }

    /// @notice A batch circuit of a model: `size` inferences per proof, its public instances every
    ///         row's input (or input commitment), then every row's output (or output commitment).
    struct BatchCircuit {
        /// @notice Rows per proof.
        uint16 size;
        /// @notice Its verifying-key artifact on this chain.
        address vka;
        /// @notice keccak256 of that VKA's runtime code; registration fails unless it matches.
        bytes32 vkaCodeHash;
    }

    /// @notice Everything a model registration sets.
    struct ModelParams {
        /// @notice The circuit and schema.
        CircuitParams circuit;
        /// @notice Compute units one inference costs a node (derived from the circuit's size; at
        ///         least 1). The fee per inference is this times {unitPriceOf}.
        uint32 computeUnits;
    }

    /// @notice A registered model as stored (fields ordered to pack the hot ones into few slots).
    struct Model {
        /// @notice The account that registered the model and may update it.
        address owner;
        /// @notice Compute units one inference costs a node (at least 1); its fee is this times
        ///         {unitPriceOf}.
        uint32 computeUnits;
        /// @notice Whether new requests are accepted.
        bool active;
        /// @notice Fixed-point scale of the inputs.
        uint8 inputScale;
        /// @notice Fixed-point scale of the outputs.
        uint8 outputScale;
        /// @notice Whether the circuit's SRS is insecure (generated locally).
        bool insecureSrs;
        /// @notice The model's verifying-key artifact.
        address vka;
        /// @notice Bumped by every circuit change; starts at 1. Zero means "not registered".
        uint32 version;
        /// @notice Elements a request's input carries: the input's size when public, 1 (the
        ///         commitment) when hashed.
        uint32 inputLength;
        /// @notice Elements a result's output carries: the output's size when public, 1 when hashed.
        uint32 outputLength;
        /// @notice The largest |input element| at the input scale.
        uint64 maxAbsInput;
        /// @notice Input visibility.
        Visibility inputVisibility;
        /// @notice Output visibility.
        Visibility outputVisibility;
        /// @notice keccak256 of the VKA's runtime code, checked at registration.
        bytes32 vkaCodeHash;
        /// @notice sha256 of the artifact manifest (see {ArtifactRefs.manifestHash}).
        bytes32 artifactsHash;
    }

    /// @notice What a gateway needs to accept a request.
    struct RequestTerms {
        /// @notice Whether new requests are accepted.
        bool active;
        /// @notice The model's current version (0: no such model).
        uint32 version;
        /// @notice Elements the request's input carries.
        uint32 inputLength;
        /// @notice Input visibility.
        Visibility inputVisibility;
        /// @notice The largest |input element| at the input scale.
        uint64 maxAbsInput;
        /// @notice The fee (wei) per inference, beyond gas: `computeUnits` times {unitPriceOf}.
        uint96 fee;
        /// @notice Compute units one inference costs a node (what its assignment spends of the node's capacity).
        uint32 computeUnits;
        /// @notice The model's artifacts hash (what a request may pin).
        bytes32 artifactsHash;
    }

    /// @notice What a gateway needs to verify a result.
    struct VerificationTerms {
        /// @notice The model's current version (0: no such model).
        uint32 version;
        /// @notice Elements the result's output carries.
        uint32 outputLength;
        /// @notice Output visibility.
        Visibility outputVisibility;
        /// @notice The protocol's verifier on this chain (the same for every model).
        address verifier;
        /// @notice The pinned verifying-key artifact (its code hash was checked at registration,
        ///         and a VKA has no way to change its code).
        address vka;
    }

    /// @notice Where a model's circuit is deployed on another connected chain (by messenger
    ///         domain), as recorded on the hub: that chain's gateway verifies with these.
    struct ChainDeployment {
        /// @notice The protocol's verifier on that chain.
        address verifier;
        /// @notice The model's VKA on that chain; its code hash equals the model's pinned one.
        address vka;
        /// @notice The model version this deployment was recorded for (stale if below the current).
        uint32 version;
        /// @notice The model's version in that chain's own registry whose circuit this is: its
        ///         requests carry that version, and only they can be answered with this circuit.
        uint32 remoteVersion;
    }

    /// @notice Proven input/output pairs a model's creator published, for anyone to re-verify.
    struct Backtests {
        /// @notice Storage id of the backtest document.
        bytes32 ref;
        /// @notice sha256 of the document.
        bytes32 contentHash;
        /// @notice How many proven pairs it holds.
        uint32 pairs;
        /// @notice The model version the pairs were proven against.
        uint32 version;
    }

    // ─────────────────────────────── Errors ───────────────────────────────

    /// @notice No model is registered under `modelId`.
    error ModelRegistryUnknownModel(bytes32 modelId);
    /// @notice The caller already registered a model under this name.
    error ModelRegistryModelExists(bytes32 modelId);
    /// @notice Only the model's owner may do this.
    error ModelRegistryNotModelOwner(bytes32 modelId, address caller);
    /// @notice Registration must pay exactly the registration fee.
    error ModelRegistryWrongRegistrationFee(uint256 required, uint256 paid);
    /// @notice The registration fee must be non-zero.
    error ModelRegistryZeroRegistrationFee();
    /// @notice `account` has no code (verifiers and VKAs must be deployed contracts).
    error ModelRegistryNotAContract(address account);
    /// @notice The VKA's runtime code does not hash to the pinned value.
    error ModelRegistryVkaCodeHashMismatch(address vka, bytes32 expected, bytes32 actual);
    /// @notice A shape is empty, has a zero dimension, or has too many elements.
    error ModelRegistryInvalidShape(uint256 elements, uint256 maxElements);
    /// @notice `maxAbsInput` must be non-zero.
    error ModelRegistryInvalidInputBound();
    /// @notice A model name is 1 to 64 bytes.
    error ModelRegistryInvalidName();
    /// @notice An artifact hash or the artifact index is missing.
    error ModelRegistryMissingArtifacts();
    /// @notice This registry does not accept circuits set up with an insecure SRS.
    error ModelRegistryInsecureSrs();
    /// @notice A model cannot be owned by the zero address.
    error ModelRegistryZeroOwner();
    /// @notice No verifier is recorded for the chain with messenger domain `domain`.
    error ModelRegistryNoChainVerifier(uint32 domain);
    /// @notice A chain deployment needs a non-zero VKA.
    error ModelRegistryInvalidChainDeployment();
    /// @notice Backtests need a storage reference, a content hash and at least one pair.
    error ModelRegistryInvalidBacktests();
    /// @notice Sending collected fees failed.
    error ModelRegistryWithdrawFailed(address to, uint256 amount);
    /// @notice A model costs at least one compute unit (a node's capacity is spent by them).
    error ModelRegistryZeroComputeUnits();
    /// @notice The model's fee (its compute units times its unit price) does not fit 96 bits.
    error ModelRegistryFeeOverflow(bytes32 modelId, uint256 fee);
    /// @notice Batch sizes must be ascending, above 1, and at most {MAX_BATCH_SIZE}; at most
    ///         {MAX_BATCH_CIRCUITS} of them.
    error ModelRegistryInvalidBatch(uint256 size);

    // ─────────────────────────────── Events ───────────────────────────────

    /// @notice A model was registered.
    event ModelRegistered(
        bytes32 indexed modelId, address indexed owner, string name, address vka, bytes32 artifactsHash, bool insecureSrs
    );
    /// @notice A model's circuit changed; its version is now `version`.
    event ModelCircuitUpdated(bytes32 indexed modelId, uint32 version, address vka, bytes32 artifactsHash, bool insecureSrs);
    /// @notice A model's compute units changed (and with them its fee).
    event ModelComputeUnitsUpdated(bytes32 indexed modelId, uint32 computeUnits);
    /// @notice A model was (de)activated.
    event ModelActiveSet(bytes32 indexed modelId, bool active);
    /// @notice A model changed hands.
    event ModelOwnershipTransferred(bytes32 indexed modelId, address indexed previousOwner, address indexed newOwner);
    /// @notice The model's VKA on the chain with messenger domain `domain` was recorded.
    /// @notice The model's batch circuit of `size` rows is deployed on chain `domain` with `vka`.
    event ModelBatchChainDeploymentSet(bytes32 indexed modelId, uint32 indexed domain, uint16 indexed size, uint32 version, address vka);
    event ModelChainDeploymentSet(
        bytes32 indexed modelId, uint32 indexed domain, uint32 version, address verifier, address vka, uint32 remoteVersion
    );
    /// @notice The model's creator published backtests for its current version.
    event BacktestsPublished(bytes32 indexed modelId, uint32 version, bytes32 ref, bytes32 contentHash, uint32 pairs);
    /// @notice The protocol set the verifier every model on this chain is verified with.
    event VerifierSet(address verifier, bytes32 codeHash);
    /// @notice The protocol recorded the verifier of the chain with messenger domain `domain`.
    event ChainVerifierSet(uint32 indexed domain, address verifier);
    /// @notice The registry owner allowed or refused circuits with an insecure SRS.
    event InsecureSrsAllowed(bool allowed);
    /// @notice The registry owner changed the registration fee.
    event RegistrationFeeSet(uint256 fee);
    /// @notice The registry owner set the price (wei) per compute unit of every pool without its own.
    event DefaultUnitPriceSet(uint96 price);
    /// @notice The registry owner set the price (wei) per compute unit of the model's pool (0: the
    ///         default applies).
    event UnitPriceSet(bytes32 indexed modelId, uint96 price);
    /// @notice Collected registration fees were withdrawn.
    event RegistrationFeesWithdrawn(address indexed to, uint256 amount);

    // ─────────────────────────────── Functions ────────────────────────────

    /// @notice The id of model `name` registered by `owner`.
    function modelIdOf(address owner, string calldata name) external pure returns (bytes32);
    /// @notice The model registered under `modelId`; reverts if unknown.
    function getModel(bytes32 modelId) external view returns (Model memory);
    /// @notice The model's name; reverts if unknown.
    function nameOf(bytes32 modelId) external view returns (string memory);
    /// @notice The model's input and output shapes; reverts if unknown.
    function getShapes(bytes32 modelId) external view returns (uint32[] memory inputShape, uint32[] memory outputShape);
    /// @notice Where the model's artifacts are stored and their hashes; reverts if unknown.
    function getArtifacts(bytes32 modelId) external view returns (ArtifactRefs memory);
    /// @notice The model's published backtests (all zero if none); reverts if unknown.
    function getBacktests(bytes32 modelId) external view returns (Backtests memory);
    /// @notice What a gateway checks a new request against; all zero (version 0) if unknown.
    function tryGetRequestTerms(bytes32 modelId) external view returns (RequestTerms memory);
    /// @notice What a gateway verifies a result with; all zero (version 0) if unknown.
    function tryGetVerificationTerms(bytes32 modelId) external view returns (VerificationTerms memory);
    /// @notice What a gateway verifies a batch of `size` rows with: the model's terms with the batch
    ///         circuit's VKA (vka zero when the model's current circuit has no batch of that size).
    function tryGetBatchVerificationTerms(bytes32 modelId, uint16 size) external view returns (VerificationTerms memory);
    /// @notice The batch sizes of the model's current circuit, ascending.
    function getBatchSizes(bytes32 modelId) external view returns (uint16[] memory);
    /// @notice The VKA of the model's batch circuit of `size` rows on the chain with messenger domain
    ///         `domain`, as recorded on the hub, and the version it was recorded for (zero if none).
    function getBatchChainDeployment(bytes32 modelId, uint32 domain, uint16 size)
        external
        view
        returns (address vka, uint32 version);
    /// @notice The model's deployment on the chain with messenger domain `domain`; all zero if none.
    function getChainDeployment(bytes32 modelId, uint32 domain) external view returns (ChainDeployment memory);
    /// @notice The verifier every model on this chain is verified with (set by the protocol).
    function verifier() external view returns (address);
    /// @notice The price (wei) per compute unit of every pool without its own price.
    function defaultUnitPrice() external view returns (uint96);
    /// @notice The price (wei) per compute unit of the model's pool: its own if set, else the default.
    function unitPriceOf(bytes32 modelId) external view returns (uint96);
}
