// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title OddModuleAnswers
/// @notice Test support: an account-shaped contract whose answers to ERC-7579 `isModuleInstalled(type, module,
///         context)` and Safe's `isModuleEnabled(module)` are set per question, in any form a view can give: bytes
///         returned as they are (short, long, words above 1), a revert, or all its gas burnt: set per module type and
///         context length ({answer}), or per whole question ({answerEach}). Questions not set are answered with a
///         well-formed false. Used to check that the session module and the SDK read every form
///         alike, and never as "not a module" where the account says yes.
contract OddModuleAnswers {
    /// @notice Return the set bytes as the answer.
    uint8 public constant RETURN = 1;
    /// @notice Revert with the set bytes.
    uint8 public constant REVERT = 2;
    /// @notice Burn all the gas given.
    uint8 public constant BURN = 3;

    struct Answer {
        uint8 how;
        bytes data;
    }

    /// @notice The answer to each question, keyed by its module type (0 for `isModuleEnabled`) and context length.
    mapping(uint256 => mapping(uint256 => Answer)) private _answers;

    /// @notice One question, whole: its module type (0 for `isModuleEnabled`), the module asked about, its context.
    struct Question {
        uint256 moduleType;
        address module;
        bytes context;
        uint8 how;
        bytes data;
    }

    /// @notice The answers of {answerEach}'s last call, keyed by round and by the question's hash (see {_key}); they
    ///         take precedence over those set by {answer}.
    mapping(uint256 => mapping(bytes32 => Answer)) private _exact;
    uint256 private _round;

    /// @notice Answer each of `questions` as it says, and no other question as the last call of this set it: a
    ///         question not listed falls back to {answer}'s, or a well-formed false.
    function answerEach(Question[] calldata questions) external {
        uint256 round = ++_round;
        for (uint256 i = 0; i < questions.length; ++i) {
            Question calldata q = questions[i];
            _exact[round][_key(q.moduleType, q.module, q.context)] = Answer(q.how, q.data);
        }
    }

    /// @notice Answer questions of `moduleType` (0: `isModuleEnabled`) asked with a context of `contextLength` bytes
    ///         in the form `how` with `data`.
    function answer(uint256 moduleType, uint256 contextLength, uint8 how, bytes calldata data) external {
        _answers[moduleType][contextLength] = Answer(how, data);
    }

    /// @notice ERC-7579's question, answered as set.
    function isModuleInstalled(uint256 moduleType, address module, bytes calldata context)
        external
        view
        returns (bool)
    {
        _give(_pick(moduleType, module, context));
        return false;
    }

    /// @notice Safe's question, answered as set.
    function isModuleEnabled(address module) external view returns (bool) {
        _give(_pick(0, module, ""));
        return false;
    }

    function _key(uint256 moduleType, address module, bytes memory context) private pure returns (bytes32) {
        return keccak256(abi.encode(moduleType, module, context));
    }

    function _pick(uint256 moduleType, address module, bytes memory context) private view returns (Answer storage) {
        Answer storage exact = _exact[_round][_key(moduleType, module, context)];
        return exact.how != 0 ? exact : _answers[moduleType][context.length];
    }

    function _give(Answer storage set) private view {
        bytes memory data = set.data;
        uint8 how = set.how;
        if (how == RETURN) {
            assembly ("memory-safe") {
                return(add(data, 32), mload(data))
            }
        }
        if (how == REVERT) {
            assembly ("memory-safe") {
                revert(add(data, 32), mload(data))
            }
        }
        if (how == BURN) {
            assembly ("memory-safe") {
                invalid()
            }
        }
    }
}
