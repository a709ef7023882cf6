// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {Owned} from "./utils/Owned.sol";

/// @title ModelRegistry
/// @notice Registers the models that Sertn gateways serve. Each model pins its circuit: the reusable
///         verifier, the verifying-key artifact (by address and code hash) and the hash of its
///         artifacts. Weights are fixed in the circuit, so the VKA identifies the model, weights
///         included. Registration costs a non-zero fee (an anti-spam measure) collected by the
///         registry owner; only a model's owner can change it.
contract ModelRegistry is IModelRegistry, Owned {
    // ─────────────────────────────── Constants ────────────────────────────

    /// @notice The most elements an input or output tensor may have.
    uint256 public constant MAX_TENSOR_ELEMENTS = 1024;

    // ─────────────────────────────── State ────────────────────────────────

    mapping(bytes32 modelId => Model) private _models;
    mapping(bytes32 modelId => uint32[]) private _inputShapes;
    mapping(bytes32 modelId => uint32[]) private _outputShapes;
    mapping(bytes32 modelId => mapping(uint32 domain => ChainDeployment)) private _chainDeployments;
    uint256 private _registrationFee;

    /// @param initialOwner The registry owner, who sets the registration fee and collects it.
    /// @param registrationFee_ The fee (wei, non-zero) for registering a model.
    constructor(address initialOwner, uint256 registrationFee_) Owned(initialOwner) {
        _setRegistrationFee(registrationFee_);
    }

    // ─────────────────────────────── Model owners ─────────────────────────

    /// @notice Registers a model under `modelId`, owned by the caller. Pays the registration fee.
    /// @dev Checks that the verifier and the VKA are contracts and that the VKA's code hashes to
    ///      `params.circuit.vkaCodeHash`.
    function registerModel(bytes32 modelId, ModelParams calldata params) external payable {
        if (msg.value != _registrationFee) revert ModelRegistryWrongRegistrationFee(_registrationFee, msg.value);
        Model storage m = _models[modelId];
        if (m.version != 0) revert ModelRegistryModelExists(modelId);
        m.owner = msg.sender;
        m.active = true;
        m.computeUnits = params.computeUnits;
        m.fee = params.fee;
        _writeCircuit(modelId, m, params.circuit, 1);
        emit ModelRegistered(modelId, msg.sender, params.circuit.vka, params.circuit.artifactsHash);
    }

    /// @notice Replaces the model's circuit (new weights, keys or schema) and bumps its version.
    ///         Pending requests made against the old version can then only be failed or refunded.
    function updateCircuit(bytes32 modelId, CircuitParams calldata circuit) external {
        Model storage m = _ownedModel(modelId);
        uint32 version = m.version + 1;
        _writeCircuit(modelId, m, circuit, version);
        emit ModelCircuitUpdated(modelId, version, circuit.vka, circuit.artifactsHash);
    }

    /// @notice Records where the model's current circuit is deployed on the connected chain with
    ///         messenger domain `domain`. The VKA there must be the same contract code as the one
    ///         pinned here (a VKA's code is its verifying key), which the caller attests with
    ///         `vkaCodeHash`; relayers and nodes check it against that chain before serving it.
    /// @dev A remote chain's code cannot be read from here: the attested hash must equal the pinned
    ///      one, and the deployment is stamped with the current version, so a circuit update makes
    ///      every recorded deployment stale until it is recorded again.
    function setChainDeployment(bytes32 modelId, uint32 domain, address verifier, address vka, bytes32 vkaCodeHash)
        external
    {
        Model storage m = _ownedModel(modelId);
        if (verifier == address(0) || vka == address(0)) revert ModelRegistryInvalidChainDeployment();
        if (vkaCodeHash != m.vkaCodeHash) revert ModelRegistryVkaCodeHashMismatch(vka, m.vkaCodeHash, vkaCodeHash);
        uint32 version = m.version;
        _chainDeployments[modelId][domain] = ChainDeployment({verifier: verifier, vka: vka, version: version});
        emit ModelChainDeploymentSet(modelId, domain, version, verifier, vka);
    }

    /// @notice Sets the model's fee and compute units; pending requests keep the fee they escrowed.
    function setPricing(bytes32 modelId, uint96 fee, uint32 computeUnits) external {
        Model storage m = _ownedModel(modelId);
        m.fee = fee;
        m.computeUnits = computeUnits;
        emit ModelPricingUpdated(modelId, fee, computeUnits);
    }

    /// @notice Opens or closes the model to new requests; pending requests are unaffected.
    function setActive(bytes32 modelId, bool active) external {
        Model storage m = _ownedModel(modelId);
        m.active = active;
        emit ModelActiveSet(modelId, active);
    }

    /// @notice Hands the model to `newOwner`.
    function transferModelOwnership(bytes32 modelId, address newOwner) external {
        if (newOwner == address(0)) revert ModelRegistryZeroOwner();
        Model storage m = _ownedModel(modelId);
        address previous = m.owner;
        m.owner = newOwner;
        emit ModelOwnershipTransferred(modelId, previous, newOwner);
    }

    // ─────────────────────────────── Registry owner ───────────────────────

    /// @notice Sets the registration fee (non-zero).
    function setRegistrationFee(uint256 fee) external onlyOwner {
        _setRegistrationFee(fee);
    }

    /// @notice Sends the collected registration fees to `to`.
    function withdrawRegistrationFees(address payable to) external onlyOwner {
        uint256 amount = address(this).balance;
        (bool ok, ) = to.call{value: amount}("");
        if (!ok) revert ModelRegistryWithdrawFailed(to, amount);
        emit RegistrationFeesWithdrawn(to, amount);
    }

    // ─────────────────────────────── Views ────────────────────────────────

    /// @notice The fee (wei) for registering a model.
    function registrationFee() external view returns (uint256) {
        return _registrationFee;
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
    function getShapes(bytes32 modelId) external view returns (uint32[] memory, uint32[] memory) {
        _knownModel(modelId);
        return (_inputShapes[modelId], _outputShapes[modelId]);
    }

    /// @inheritdoc IModelRegistry
    function tryGetRequestTerms(bytes32 modelId) external view returns (RequestTerms memory terms) {
        Model storage m = _models[modelId];
        terms = RequestTerms({
            active: m.active,
            version: m.version,
            inputLength: m.inputLength,
            maxAbsInput: m.maxAbsInput,
            fee: m.fee
        });
    }

    /// @inheritdoc IModelRegistry
    function tryGetVerificationTerms(bytes32 modelId) external view returns (VerificationTerms memory terms) {
        Model storage m = _models[modelId];
        terms = VerificationTerms({version: m.version, outputLength: m.outputLength, verifier: m.verifier, vka: m.vka});
    }

    /// @inheritdoc IModelRegistry
    function getChainDeployment(bytes32 modelId, uint32 domain) external view returns (ChainDeployment memory) {
        return _chainDeployments[modelId][domain];
    }

    // ─────────────────────────────── Internals ────────────────────────────

    function _knownModel(bytes32 modelId) private view returns (Model storage m) {
        m = _models[modelId];
        if (m.version == 0) revert ModelRegistryUnknownModel(modelId);
    }

    function _ownedModel(bytes32 modelId) private view returns (Model storage m) {
        m = _knownModel(modelId);
        if (m.owner != msg.sender) revert ModelRegistryNotModelOwner(modelId, msg.sender);
    }

    function _writeCircuit(bytes32 modelId, Model storage m, CircuitParams calldata c, uint32 version) private {
        if (c.verifier.code.length == 0) revert ModelRegistryNotAContract(c.verifier);
        if (c.vka.code.length == 0) revert ModelRegistryNotAContract(c.vka);
        if (c.vka.codehash != c.vkaCodeHash) revert ModelRegistryVkaCodeHashMismatch(c.vka, c.vkaCodeHash, c.vka.codehash);
        if (c.maxAbsInput == 0) revert ModelRegistryInvalidInputBound();
        m.verifier = c.verifier;
        m.vka = c.vka;
        m.vkaCodeHash = c.vkaCodeHash;
        m.artifactsHash = c.artifactsHash;
        m.inputLength = _elements(c.inputShape);
        m.outputLength = _elements(c.outputShape);
        m.inputScale = c.inputScale;
        m.outputScale = c.outputScale;
        m.maxAbsInput = c.maxAbsInput;
        m.version = version;
        _inputShapes[modelId] = c.inputShape;
        _outputShapes[modelId] = c.outputShape;
    }

    function _elements(uint32[] calldata shape) private pure returns (uint32) {
        uint256 n = shape.length == 0 ? 0 : 1;
        for (uint256 i; i < shape.length && n <= MAX_TENSOR_ELEMENTS; ++i) n *= shape[i];
        if (n == 0 || n > MAX_TENSOR_ELEMENTS) revert ModelRegistryInvalidShape(n, MAX_TENSOR_ELEMENTS);
        return uint32(n);
    }

    function _setRegistrationFee(uint256 fee) private {
        if (fee == 0) revert ModelRegistryZeroRegistrationFee();
        _registrationFee = fee;
        emit RegistrationFeeSet(fee);
    }
}
