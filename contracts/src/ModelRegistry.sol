// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IModelRegistry, Visibility} from "./interfaces/IModelRegistry.sol";
import {Owned} from "./utils/Owned.sol";

/// @title ModelRegistry
/// @notice Registers the models that Sertn gateways serve. Each model pins its circuit: the
///         verifying-key artifact (by address and code hash), checked by the one verifier the
///         protocol sets for this chain, and the content hashes of its artifacts with where they are
///         stored. Weights are fixed in the circuit, so the VKA identifies the model, weights
///         included. Registration costs a non-zero fee (an anti-spam measure) collected by the
///         registry owner; only a model's owner can change it. A model's fee per inference is its
///         compute units (derived from the circuit's size) times the price per compute unit of its
///         pool, in this chain's native token: a default, or the model's own, both set by the
///         registry owner.
/// @dev The registry owner is the protocol: it sets the verifier (one audited reusable verifier per
///      chain, the same for every model, so a model owner cannot pair a genuine VKA with a verifier
///      that accepts anything), the verifiers of the other chains (for the hub's records of where
///      each model is deployed), whether insecure-SRS circuits are accepted, the registration fee
///      and the unit prices. A model id is keccak256(abi.encode(owner, name)), so names cannot be
///      squatted.
contract ModelRegistry is IModelRegistry, Owned {
    // ─────────────────────────────── Constants ────────────────────────────

    /// @notice The most elements a public input or output tensor may have.
    uint256 public constant MAX_TENSOR_ELEMENTS = 1024;
    /// @notice The most elements a hashed tensor may have (its data lives in storage).
    uint256 public constant MAX_HASHED_ELEMENTS = 1 << 24;
    /// @notice The longest model name.
    uint256 public constant MAX_NAME_LENGTH = 64;
    /// @notice The most rows a batch circuit may have.
    uint16 public constant MAX_BATCH_SIZE = 256;
    /// @notice The most batch circuits a model may have.
    uint256 public constant MAX_BATCH_CIRCUITS = 8;

    // ─────────────────────────────── State ────────────────────────────────

    mapping(bytes32 modelId => Model) private _models;
    mapping(bytes32 modelId => string) private _names;
    mapping(bytes32 modelId => uint32[]) private _inputShapes;
    mapping(bytes32 modelId => uint32[]) private _outputShapes;
    mapping(bytes32 modelId => ArtifactRefs) private _artifacts;
    mapping(bytes32 modelId => Backtests) private _backtests;
    mapping(bytes32 modelId => mapping(uint32 domain => ChainDeployment)) private _chainDeployments;
    mapping(uint32 domain => address) private _chainVerifiers;
    address private _verifier;
    bool private _allowInsecureSrs;
    uint256 private _registrationFee;
    uint96 private _defaultUnitPrice;
    mapping(bytes32 modelId => uint96) private _unitPrices;
    /// @dev Batch VKAs by model, circuit version and batch size; the sizes of each version.
    mapping(bytes32 modelId => mapping(uint32 version => mapping(uint16 size => address))) private _batchVkas;
    mapping(bytes32 modelId => mapping(uint32 version => uint16[])) private _batchSizes;
    mapping(bytes32 modelId => mapping(uint32 domain => mapping(uint16 size => BatchDeployment))) private _batchDeployments;

    struct BatchDeployment {
        address vka;
        uint32 version;
    }

    /// @param initialOwner The registry owner (the protocol), who sets verifiers, fees and prices.
    /// @param registrationFee_ The fee (wei, non-zero) for registering a model.
    /// @param defaultUnitPrice_ The price (wei) per compute unit of every pool without its own.
    /// @param verifier_ The reusable verifier every model on this chain is verified with.
    /// @param allowInsecureSrs_ Whether circuits set up with a locally generated SRS are accepted
    ///        (local chains and tests only).
    constructor(
        address initialOwner,
        uint256 registrationFee_,
        uint96 defaultUnitPrice_,
        address verifier_,
        bool allowInsecureSrs_
    ) Owned(initialOwner) {
        _setRegistrationFee(registrationFee_);
        _defaultUnitPrice = defaultUnitPrice_;
        emit DefaultUnitPriceSet(defaultUnitPrice_);
        _setVerifier(verifier_);
        _allowInsecureSrs = allowInsecureSrs_;
        emit InsecureSrsAllowed(allowInsecureSrs_);
    }

    // ─────────────────────────────── Model owners ─────────────────────────

    /// @notice Registers model `name`, owned by the caller, under {modelIdOf}(caller, name). Pays
    ///         the registration fee. Its fee per inference is `params.computeUnits` (at least 1)
    ///         times its pool's unit price ({unitPriceOf}).
    /// @dev Checks that the VKA is a contract whose code hashes to `params.circuit.vkaCodeHash`.
    function registerModel(string calldata name, ModelParams calldata params) external payable returns (bytes32 modelId) {
        if (msg.value != _registrationFee) revert ModelRegistryWrongRegistrationFee(_registrationFee, msg.value);
        uint256 length = bytes(name).length;
        if (length == 0 || length > MAX_NAME_LENGTH) revert ModelRegistryInvalidName();
        modelId = _idOf(msg.sender, name);
        Model storage m = _models[modelId];
        if (m.version != 0) revert ModelRegistryModelExists(modelId);
        if (params.computeUnits == 0) revert ModelRegistryZeroComputeUnits();
        m.owner = msg.sender;
        m.active = true;
        m.computeUnits = params.computeUnits;
        _names[modelId] = name;
        _writeCircuit(modelId, m, params.circuit, 1);
        emit ModelRegistered(
            modelId, msg.sender, name, params.circuit.vka, params.circuit.artifacts.manifestHash, params.circuit.insecureSrs
        );
    }

    /// @notice Replaces the model's circuit (new weights, keys or schema) and bumps its version.
    ///         Pending requests made against the old version can then only be failed or refunded.
    function updateCircuit(bytes32 modelId, CircuitParams calldata circuit) external {
        Model storage m = _ownedModel(modelId);
        uint32 version = m.version + 1;
        _writeCircuit(modelId, m, circuit, version);
        emit ModelCircuitUpdated(modelId, version, circuit.vka, circuit.artifacts.manifestHash, circuit.insecureSrs);
    }

    /// @notice Records where the model's current circuit is deployed on the connected chain with
    ///         messenger domain `domain`: its VKA there, verified by the verifier the protocol
    ///         recorded for that chain. The VKA must be the same contract code as the one pinned
    ///         here (a VKA's code is its verifying key), which the caller attests with
    ///         `vkaCodeHash`; nodes check it against that chain before serving it.
    /// @dev A remote chain's code cannot be read from here: the attested hash must equal the pinned
    ///      one, and the deployment is stamped with the current version, so a circuit update makes
    ///      every recorded deployment stale until it is recorded again. `remoteVersion` is the
    ///      model's version in that chain's registry (requests there carry it), so the market
    ///      never answers a request made against another circuit there.
    function setChainDeployment(bytes32 modelId, uint32 domain, address vka, bytes32 vkaCodeHash, uint32 remoteVersion)
        external
    {
        Model storage m = _ownedModel(modelId);
        if (vka == address(0)) revert ModelRegistryInvalidChainDeployment();
        address verifierThere = _chainVerifiers[domain];
        if (verifierThere == address(0)) revert ModelRegistryNoChainVerifier(domain);
        if (vkaCodeHash != m.vkaCodeHash) revert ModelRegistryVkaCodeHashMismatch(vka, m.vkaCodeHash, vkaCodeHash);
        uint32 version = m.version;
        _chainDeployments[modelId][domain] =
            ChainDeployment({verifier: verifierThere, vka: vka, version: version, remoteVersion: remoteVersion});
        emit ModelChainDeploymentSet(modelId, domain, version, verifierThere, vka, remoteVersion);
    }

    /// @notice Records that the model's current batch circuit of `size` rows is deployed on chain
    ///         `domain` with `vka`, whose code hash equals the batch VKA pinned here (so the spoke
    ///         verifies exactly the circuit the hub does). Record the model's own deployment there
    ///         first ({setChainDeployment}); the hub market sends a batch only where both are current.
    function setBatchChainDeployment(bytes32 modelId, uint32 domain, uint16 size, address vka, bytes32 vkaCodeHash) external {
        Model storage m = _ownedModel(modelId);
        uint32 version = m.version;
        address pinned = _batchVkas[modelId][version][size];
        if (pinned == address(0) || vka == address(0)) revert ModelRegistryInvalidChainDeployment();
        if (_chainVerifiers[domain] == address(0)) revert ModelRegistryNoChainVerifier(domain);
        if (vkaCodeHash != pinned.codehash) revert ModelRegistryVkaCodeHashMismatch(vka, pinned.codehash, vkaCodeHash);
        _batchDeployments[modelId][domain][size] = BatchDeployment({vka: vka, version: version});
        emit ModelBatchChainDeploymentSet(modelId, domain, size, version, vka);
    }

    /// @notice Publishes proven input/output pairs for the model's current version: a document in
    ///         storage (`ref`) whose sha256 is `contentHash`, holding `pairs` proofs that anyone can
    ///         check against the registered circuit (`sertn model backtest verify`).
    function publishBacktests(bytes32 modelId, bytes32 ref, bytes32 contentHash, uint32 pairs) external {
        Model storage m = _ownedModel(modelId);
        if (ref == bytes32(0) || contentHash == bytes32(0) || pairs == 0) revert ModelRegistryInvalidBacktests();
        uint32 version = m.version;
        _backtests[modelId] = Backtests({ref: ref, contentHash: contentHash, pairs: pairs, version: version});
        emit BacktestsPublished(modelId, version, ref, contentHash, pairs);
    }

    /// @notice Sets the compute units one inference of the model costs (at least 1), and with them
    ///         its fee; pending requests keep the fee they escrowed and the units their node spent.
    function setComputeUnits(bytes32 modelId, uint32 computeUnits) external {
        Model storage m = _ownedModel(modelId);
        if (computeUnits == 0) revert ModelRegistryZeroComputeUnits();
        m.computeUnits = computeUnits;
        emit ModelComputeUnitsUpdated(modelId, computeUnits);
    }

    /// @notice Opens or closes the model to new requests; pending requests are unaffected.
    function setActive(bytes32 modelId, bool active) external {
        Model storage m = _ownedModel(modelId);
        m.active = active;
        emit ModelActiveSet(modelId, active);
    }

    /// @notice Hands the model to `newOwner` (its id does not change).
    function transferModelOwnership(bytes32 modelId, address newOwner) external {
        if (newOwner == address(0)) revert ModelRegistryZeroOwner();
        Model storage m = _ownedModel(modelId);
        address previous = m.owner;
        m.owner = newOwner;
        emit ModelOwnershipTransferred(modelId, previous, newOwner);
    }

    // ─────────────────────────────── Registry owner ───────────────────────

    /// @notice Sets the verifier every model on this chain is verified with.
    function setVerifier(address verifier_) external onlyOwner {
        _setVerifier(verifier_);
    }

    /// @notice Records the verifier of the chain with messenger domain `domain` (on the hub: the
    ///         verifier each spoke's gateway verifies with).
    function setChainVerifier(uint32 domain, address verifier_) external onlyOwner {
        if (verifier_ == address(0)) revert ModelRegistryInvalidChainDeployment();
        _chainVerifiers[domain] = verifier_;
        emit ChainVerifierSet(domain, verifier_);
    }

    /// @notice Accepts (local chains, tests) or refuses circuits set up with an insecure SRS.
    ///         Models already registered keep their flag, visible in {getModel}.
    function setAllowInsecureSrs(bool allowed) external onlyOwner {
        _allowInsecureSrs = allowed;
        emit InsecureSrsAllowed(allowed);
    }

    /// @notice Sets the registration fee (non-zero).
    function setRegistrationFee(uint256 fee) external onlyOwner {
        _setRegistrationFee(fee);
    }

    /// @notice Sets the price (wei) per compute unit of every pool without its own price; pending
    ///         requests keep the fee they escrowed.
    function setDefaultUnitPrice(uint96 price) external onlyOwner {
        _defaultUnitPrice = price;
        emit DefaultUnitPriceSet(price);
    }

    /// @notice Sets the price (wei) per compute unit of the model's pool; 0 returns it to the
    ///         default. Pending requests keep the fee they escrowed.
    function setUnitPrice(bytes32 modelId, uint96 price) external onlyOwner {
        _knownModel(modelId);
        _unitPrices[modelId] = price;
        emit UnitPriceSet(modelId, price);
    }

    /// @notice Sends the collected registration fees to `to`.
    function withdrawRegistrationFees(address payable to) external onlyOwner {
        uint256 amount = address(this).balance;
        (bool ok, ) = to.call{value: amount}("");
        if (!ok) revert ModelRegistryWithdrawFailed(to, amount);
        emit RegistrationFeesWithdrawn(to, amount);
    }

    // ─────────────────────────────── Views ────────────────────────────────

    /// @inheritdoc IModelRegistry
    function modelIdOf(address owner_, string calldata name) external pure returns (bytes32) {
        return _idOf(owner_, name);
    }

    /// @notice The fee (wei) for registering a model.
    function registrationFee() external view returns (uint256) {
        return _registrationFee;
    }

    /// @inheritdoc IModelRegistry
    function verifier() external view returns (address) {
        return _verifier;
    }

    /// @inheritdoc IModelRegistry
    function defaultUnitPrice() external view returns (uint96) {
        return _defaultUnitPrice;
    }

    /// @inheritdoc IModelRegistry
    function unitPriceOf(bytes32 modelId) public view returns (uint96) {
        uint96 price = _unitPrices[modelId];
        return price == 0 ? _defaultUnitPrice : price;
    }

    /// @notice The verifier recorded for the chain with messenger domain `domain` (zero if none).
    function chainVerifier(uint32 domain) external view returns (address) {
        return _chainVerifiers[domain];
    }

    /// @notice Whether circuits set up with an insecure SRS are accepted.
    function allowInsecureSrs() external view returns (bool) {
        return _allowInsecureSrs;
    }

    /// @notice Whether a model is registered under `modelId`.
    function exists(bytes32 modelId) external view returns (bool) {
        return _models[modelId].version != 0;
    }

    /// @inheritdoc IModelRegistry
    function getModel(bytes32 modelId) external view returns (Model memory) {
        return _knownModel(modelId);
    }

    /// @inheritdoc IModelRegistry
    function nameOf(bytes32 modelId) external view returns (string memory) {
        _knownModel(modelId);
        return _names[modelId];
    }

    /// @inheritdoc IModelRegistry
    function getShapes(bytes32 modelId) external view returns (uint32[] memory, uint32[] memory) {
        _knownModel(modelId);
        return (_inputShapes[modelId], _outputShapes[modelId]);
    }

    /// @inheritdoc IModelRegistry
    function getArtifacts(bytes32 modelId) external view returns (ArtifactRefs memory) {
        _knownModel(modelId);
        return _artifacts[modelId];
    }

    /// @inheritdoc IModelRegistry
    function getBacktests(bytes32 modelId) external view returns (Backtests memory) {
        _knownModel(modelId);
        return _backtests[modelId];
    }

    /// @inheritdoc IModelRegistry
    /// @dev The fee is the model's compute units times its pool's unit price; reverts with
    ///      {ModelRegistryFeeOverflow} if that does not fit 96 bits.
    function tryGetRequestTerms(bytes32 modelId) external view returns (RequestTerms memory terms) {
        Model storage m = _models[modelId];
        uint256 fee = uint256(m.computeUnits) * unitPriceOf(modelId);
        if (fee > type(uint96).max) revert ModelRegistryFeeOverflow(modelId, fee);
        terms = RequestTerms({
            active: m.active,
            version: m.version,
            inputLength: m.inputLength,
            inputVisibility: m.inputVisibility,
            maxAbsInput: m.maxAbsInput,
            fee: uint96(fee),
            computeUnits: m.computeUnits,
            artifactsHash: m.artifactsHash
        });
    }

    /// @inheritdoc IModelRegistry
    function tryGetVerificationTerms(bytes32 modelId) external view returns (VerificationTerms memory terms) {
        Model storage m = _models[modelId];
        terms = VerificationTerms({
            version: m.version,
            outputLength: m.outputLength,
            outputVisibility: m.outputVisibility,
            verifier: _verifier,
            vka: m.vka
        });
    }

    /// @inheritdoc IModelRegistry
    function tryGetBatchVerificationTerms(bytes32 modelId, uint16 size) external view returns (VerificationTerms memory terms) {
        Model storage m = _models[modelId];
        uint32 version = m.version;
        terms = VerificationTerms({
            version: version,
            outputLength: m.outputLength,
            outputVisibility: m.outputVisibility,
            verifier: _verifier,
            vka: _batchVkas[modelId][version][size]
        });
    }

    /// @inheritdoc IModelRegistry
    function getBatchSizes(bytes32 modelId) external view returns (uint16[] memory) {
        return _batchSizes[modelId][_models[modelId].version];
    }

    /// @inheritdoc IModelRegistry
    function getBatchChainDeployment(bytes32 modelId, uint32 domain, uint16 size)
        external
        view
        returns (address vka, uint32 version)
    {
        BatchDeployment storage d = _batchDeployments[modelId][domain][size];
        return (d.vka, d.version);
    }

    /// @inheritdoc IModelRegistry
    function getChainDeployment(bytes32 modelId, uint32 domain) external view returns (ChainDeployment memory) {
        return _chainDeployments[modelId][domain];
    }

    // ─────────────────────────────── Internals ────────────────────────────

    function _idOf(address owner_, string calldata name) private pure returns (bytes32) {
        return keccak256(abi.encode(owner_, name));
    }

    function _knownModel(bytes32 modelId) private view returns (Model storage m) {
        m = _models[modelId];
        if (m.version == 0) revert ModelRegistryUnknownModel(modelId);
    }

    function _ownedModel(bytes32 modelId) private view returns (Model storage m) {
        m = _knownModel(modelId);
        if (m.owner != msg.sender) revert ModelRegistryNotModelOwner(modelId, msg.sender);
    }

    function _writeCircuit(bytes32 modelId, Model storage m, CircuitParams calldata c, uint32 version) private {
        if (c.vka.code.length == 0) revert ModelRegistryNotAContract(c.vka);
        if (c.vka.codehash != c.vkaCodeHash) revert ModelRegistryVkaCodeHashMismatch(c.vka, c.vkaCodeHash, c.vka.codehash);
        if (c.maxAbsInput == 0) revert ModelRegistryInvalidInputBound();
        if (c.insecureSrs && !_allowInsecureSrs) revert ModelRegistryInsecureSrs();
        ArtifactRefs calldata a = c.artifacts;
        if (
            a.manifestHash == bytes32(0) || a.index == bytes32(0) || a.compiledHash == bytes32(0)
                || a.vkHash == bytes32(0) || a.settingsHash == bytes32(0) || a.srsHash == bytes32(0)
        ) revert ModelRegistryMissingArtifacts();
        m.vka = c.vka;
        m.vkaCodeHash = c.vkaCodeHash;
        m.artifactsHash = a.manifestHash;
        m.inputLength = _instances(c.inputShape, c.inputVisibility);
        m.outputLength = _instances(c.outputShape, c.outputVisibility);
        m.inputVisibility = c.inputVisibility;
        m.outputVisibility = c.outputVisibility;
        m.inputScale = c.inputScale;
        m.outputScale = c.outputScale;
        m.maxAbsInput = c.maxAbsInput;
        m.insecureSrs = c.insecureSrs;
        m.version = version;
        _artifacts[modelId] = a;
        _inputShapes[modelId] = c.inputShape;
        _outputShapes[modelId] = c.outputShape;
        _writeBatches(modelId, version, c.batches);
    }

    /// @dev Records the circuit's batch circuits for `version` (each VKA checked like the model's).
    function _writeBatches(bytes32 modelId, uint32 version, BatchCircuit[] calldata batches) private {
        if (batches.length > MAX_BATCH_CIRCUITS) revert ModelRegistryInvalidBatch(batches.length);
        uint256 last = 1;
        uint16[] storage sizes = _batchSizes[modelId][version];
        for (uint256 i; i < batches.length; ++i) {
            BatchCircuit calldata b = batches[i];
            if (b.size <= last || b.size > MAX_BATCH_SIZE) revert ModelRegistryInvalidBatch(b.size);
            if (b.vka.code.length == 0) revert ModelRegistryNotAContract(b.vka);
            if (b.vka.codehash != b.vkaCodeHash) revert ModelRegistryVkaCodeHashMismatch(b.vka, b.vkaCodeHash, b.vka.codehash);
            _batchVkas[modelId][version][b.size] = b.vka;
            sizes.push(b.size);
            last = b.size;
        }
    }

    /// @dev The public instances a tensor of `shape` takes: its elements, or 1 (its hash).
    function _instances(uint32[] calldata shape, Visibility visibility) private pure returns (uint32) {
        uint256 max = visibility == Visibility.Hashed ? MAX_HASHED_ELEMENTS : MAX_TENSOR_ELEMENTS;
        uint256 n = shape.length == 0 ? 0 : 1;
        for (uint256 i; i < shape.length && n <= max; ++i) n *= shape[i];
        if (n == 0 || n > max) revert ModelRegistryInvalidShape(n, max);
        return visibility == Visibility.Hashed ? 1 : uint32(n);
    }

    function _setVerifier(address verifier_) private {
        if (verifier_.code.length == 0) revert ModelRegistryNotAContract(verifier_);
        _verifier = verifier_;
        emit VerifierSet(verifier_, verifier_.codehash);
    }

    function _setRegistrationFee(uint256 fee) private {
        if (fee == 0) revert ModelRegistryZeroRegistrationFee();
        _registrationFee = fee;
        emit RegistrationFeeSet(fee);
    }
}
