// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IModelRegistry
/// @notice Models that gateways serve: their circuit (verifier, pinned verifying-key artifact),
///         input/output schema, price and owner.
interface IModelRegistry {
    // ─────────────────────────────── Types ────────────────────────────────

    /// @notice The parts of a model that define its circuit. Changing any of them bumps the model's
    ///         version, and requests made against an older version can no longer be fulfilled.
    struct CircuitParams {
        /// @notice The reusable Halo2 verifier on this chain.
        address verifier;
        /// @notice The model's verifying-key artifact (VKA) contract.
        address vka;
        /// @notice keccak256 of the VKA's runtime code; registration fails unless it matches.
        bytes32 vkaCodeHash;
        /// @notice Content hash of the model's artifact manifest (ONNX, compiled circuit, keys).
        bytes32 artifactsHash;
        /// @notice Input tensor shape, e.g. [1, 4]; the input has the product of its dims elements.
        uint32[] inputShape;
        /// @notice Output tensor shape, e.g. [1, 3].
        uint32[] outputShape;
        /// @notice Fixed-point scale of the inputs: a real x is passed as round(x * 2^inputScale).
        uint8 inputScale;
        /// @notice Fixed-point scale of the outputs.
        uint8 outputScale;
        /// @notice The largest |input element| (at the input scale) the circuit is sized for.
        uint64 maxAbsInput;
    }

    /// @notice Everything a model registration sets.
    struct ModelParams {
        /// @notice The circuit and schema.
        CircuitParams circuit;
        /// @notice Compute units one inference costs a node.
        uint32 computeUnits;
        /// @notice The fee (wei) a requester pays the node for one inference, beyond gas.
        uint96 fee;
    }

    /// @notice A registered model as stored (fields ordered to pack the hot ones into few slots).
    struct Model {
        /// @notice The account that may update the model.
        address owner;
        /// @notice Compute units one inference costs a node.
        uint32 computeUnits;
        /// @notice Whether new requests are accepted.
        bool active;
        /// @notice Fixed-point scale of the inputs.
        uint8 inputScale;
        /// @notice Fixed-point scale of the outputs.
        uint8 outputScale;
        /// @notice The reusable Halo2 verifier on this chain.
        address verifier;
        /// @notice Bumped by every circuit change; starts at 1. Zero means "not registered".
        uint32 version;
        /// @notice Number of input elements (the product of the input shape).
        uint32 inputLength;
        /// @notice Number of output elements (the product of the output shape).
        uint32 outputLength;
        /// @notice The model's verifying-key artifact.
        address vka;
        /// @notice The fee (wei) per inference, beyond gas.
        uint96 fee;
        /// @notice keccak256 of the VKA's runtime code, checked at registration.
        bytes32 vkaCodeHash;
        /// @notice Content hash of the artifact manifest.
        bytes32 artifactsHash;
        /// @notice The largest |input element| at the input scale.
        uint64 maxAbsInput;
    }

    /// @notice What a gateway needs to accept a request.
    struct RequestTerms {
        /// @notice Whether new requests are accepted.
        bool active;
        /// @notice The model's current version.
        uint32 version;
        /// @notice Number of input elements.
        uint32 inputLength;
        /// @notice The largest |input element| at the input scale.
        uint64 maxAbsInput;
        /// @notice The fee (wei) per inference, beyond gas.
        uint96 fee;
    }

    /// @notice What a gateway needs to verify a result.
    struct VerificationTerms {
        /// @notice The model's current version.
        uint32 version;
        /// @notice Number of output elements.
        uint32 outputLength;
        /// @notice The reusable verifier.
        address verifier;
        /// @notice The pinned verifying-key artifact (its code hash was checked at registration,
        ///         and a VKA has no way to change its code).
        address vka;
    }

    /// @notice Where a model's circuit is deployed on another connected chain (by messenger
    ///         domain), as recorded on the hub: that chain's gateway verifies with these.
    struct ChainDeployment {
        /// @notice The reusable Halo2 verifier on that chain.
        address verifier;
        /// @notice The model's VKA on that chain; its code hash equals the model's pinned one.
        address vka;
        /// @notice The model version this deployment was recorded for (stale if below the current).
        uint32 version;
    }

    // ─────────────────────────────── Errors ───────────────────────────────

    /// @notice No model is registered under `modelId`.
    error ModelRegistryUnknownModel(bytes32 modelId);
    /// @notice A model is already registered under `modelId`.
    error ModelRegistryModelExists(bytes32 modelId);
    /// @notice Only the model's owner may do this.
    error ModelRegistryNotModelOwner(bytes32 modelId, address caller);
    /// @notice Registration must pay exactly the registration fee.
    error ModelRegistryWrongRegistrationFee(uint256 required, uint256 paid);
    /// @notice The registration fee must be non-zero.
    error ModelRegistryZeroRegistrationFee();
    /// @notice `account` has no code (verifier and VKA must be deployed contracts).
    error ModelRegistryNotAContract(address account);
    /// @notice The VKA's runtime code does not hash to the pinned value.
    error ModelRegistryVkaCodeHashMismatch(address vka, bytes32 expected, bytes32 actual);
    /// @notice A shape is empty, has a zero dimension, or has too many elements.
    error ModelRegistryInvalidShape(uint256 elements, uint256 maxElements);
    /// @notice `maxAbsInput` must be non-zero.
    error ModelRegistryInvalidInputBound();
    /// @notice A model cannot be owned by the zero address.
    error ModelRegistryZeroOwner();
    /// @notice A chain deployment needs a non-zero verifier and VKA.
    error ModelRegistryInvalidChainDeployment();
    /// @notice Sending collected fees failed.
    error ModelRegistryWithdrawFailed(address to, uint256 amount);

    // ─────────────────────────────── Events ───────────────────────────────

    /// @notice A model was registered.
    event ModelRegistered(bytes32 indexed modelId, address indexed owner, address vka, bytes32 artifactsHash);
    /// @notice A model's circuit changed; its version is now `version`.
    event ModelCircuitUpdated(bytes32 indexed modelId, uint32 version, address vka, bytes32 artifactsHash);
    /// @notice A model's price or compute units changed.
    event ModelPricingUpdated(bytes32 indexed modelId, uint96 fee, uint32 computeUnits);
    /// @notice A model was (de)activated.
    event ModelActiveSet(bytes32 indexed modelId, bool active);
    /// @notice A model changed hands.
    event ModelOwnershipTransferred(bytes32 indexed modelId, address indexed previousOwner, address indexed newOwner);
    /// @notice The model's verifier and VKA on the chain with messenger domain `domain` were recorded.
    event ModelChainDeploymentSet(bytes32 indexed modelId, uint32 indexed domain, uint32 version, address verifier, address vka);
    /// @notice The registry owner changed the registration fee.
    event RegistrationFeeSet(uint256 fee);
    /// @notice Collected registration fees were withdrawn.
    event RegistrationFeesWithdrawn(address indexed to, uint256 amount);

    // ─────────────────────────────── Functions ────────────────────────────

    /// @notice The model registered under `modelId`; reverts if unknown.
    function getModel(bytes32 modelId) external view returns (Model memory);
    /// @notice The model's input and output shapes; reverts if unknown.
    function getShapes(bytes32 modelId) external view returns (uint32[] memory inputShape, uint32[] memory outputShape);
    /// @notice What a gateway checks a new request against; all zero (version 0) if unknown.
    function tryGetRequestTerms(bytes32 modelId) external view returns (RequestTerms memory);
    /// @notice What a gateway verifies a result with; all zero (version 0) if unknown.
    function tryGetVerificationTerms(bytes32 modelId) external view returns (VerificationTerms memory);
    /// @notice The model's deployment on the chain with messenger domain `domain`; all zero if none.
    function getChainDeployment(bytes32 modelId, uint32 domain) external view returns (ChainDeployment memory);
}
