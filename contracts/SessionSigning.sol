// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ISessionKeyValidator} from "./interfaces/ISessionKeyValidator.sol";
import {MAX_RULE_WORDS} from "./Rules.sol";
import {SessionCoSigning} from "./SessionCoSigning.sol";
import {SessionSignatureVerifier, SigningHeader, SigningKeys} from "./SessionSignatureVerifier.sol";

/// @title SessionSigning
/// @notice The module's side of sessions' ERC-1271 signatures: the signing permissions a grant gives (typed data of
///         granted domains and types with rules on their fields, EIP-4361 sign-in for granted websites), where they
///         are stored, and `isValidSignatureWithSender`, which asks the module's {SessionSignatureVerifier} to judge
///         a signature against them.
/// @dev Storage (keyed by the account, innermost):
///     _signing[signingKey][account]        header ({SigningHeader}), TypedDataSign typehash, nested list, rule words
///     _signingRecords[sessionId][account]  the session's signing keys, to clear them when it dies
/// Signing keys are {SigningKeys}': under the session key, or under a co-signed session's space.
abstract contract SessionSigning is SessionCoSigning {
    /// @notice Most signing permissions (typed data and sign-in together) in one session.
    uint256 public constant MAX_SIGNING_PERMISSIONS = 8;

    /// @dev `header` is a {SigningHeader}; typed data only: `typedDataSignTypeHash`, `nested` (count in the low
    ///      byte, then one 16-bit word index per nested struct) and the rule words ({RuleWord}).
    struct SigningSlots {
        uint256 header;
        bytes32 typedDataSignTypeHash;
        uint256 nested;
        uint256[MAX_RULE_WORDS] words;
    }

    /// @dev The signing keys of one session, to clear them when it is revoked or invalidated.
    struct SigningRecord {
        uint256 count;
        bytes32[MAX_SIGNING_PERMISSIONS] keys;
    }

    /// @notice The contract that judges sessions' signatures for this module (created with it).
    SessionSignatureVerifier public immutable signatureVerifier;

    mapping(bytes32 signingKey => mapping(address account => SigningSlots)) internal _signing;
    mapping(bytes32 sessionId => mapping(address account => SigningRecord)) internal _signingRecords;

    constructor() {
        signatureVerifier = new SessionSignatureVerifier();
    }

    /*//////////////////////////////////////////////////////////////
                               ERC-1271
    //////////////////////////////////////////////////////////////*/

    /// @notice ERC-1271 through the account: whether `signature` is a session's signature of `hash` that its signing
    ///         permissions allow, for the calling account, asked by `sender`.
    /// @return 0x1626ba7e when valid, 0xffffffff otherwise (see {requireValidSignature} for the reason).
    function isValidSignatureWithSender(address sender, bytes32 hash, bytes calldata signature)
        external
        view
        override
        returns (bytes4)
    {
        try signatureVerifier.refusal(msg.sender, sender, hash, signature) returns (bytes memory refused) {
            return refused.length == 0 ? ERC1271_MAGIC : ERC1271_INVALID;
        } catch {
            return ERC1271_INVALID;
        }
    }

    /// @inheritdoc ISessionKeyValidator
    function requireValidSignature(address account, address sender, bytes32 hash, bytes calldata signature)
        external
        view
        override
    {
        bytes memory refused = signatureVerifier.refusal(account, sender, hash, signature);
        if (refused.length != 0) {
            assembly ("memory-safe") {
                revert(add(refused, 0x20), mload(refused))
            }
        }
    }

    /// @inheritdoc ISessionKeyValidator
    function signingPermission(address account, bytes32 signingKey)
        external
        view
        override
        returns (uint256 header, bytes32 typedDataSignTypeHash, uint256 nested, uint256[] memory ruleWords)
    {
        SigningSlots storage slots = _signing[signingKey][account];
        header = slots.header;
        typedDataSignTypeHash = slots.typedDataSignTypeHash;
        nested = slots.nested;
        ruleWords = new uint256[](SigningHeader.ruleWords(header));
        for (uint256 i = 0; i < ruleWords.length; ++i) {
            ruleWords[i] = slots.words[i];
        }
    }

    /// @inheritdoc ISessionKeyValidator
    function sessionSignerOf(address account, bytes32 id)
        external
        view
        override
        returns (address key, address space, bool coSigned, address coSigner)
    {
        (coSigned, coSigner) = _coSignerRecord(account, id);
        return (_sessionKey(account, id), _coSignedSpace(id), coSigned, coSigner);
    }

    /*//////////////////////////////////////////////////////////////
                               GRANTING
    //////////////////////////////////////////////////////////////*/

    /// @dev The recorded key of a session (address(0): none, or revoked). The validator knows sessions.
    function _sessionKey(address account, bytes32 id) internal view virtual returns (address);

    /// @dev Check and store a session's signing permissions under `space` (its key, or its co-signed space);
    ///      returns how many.
    function _enableSigning(address account, bytes32 id, address space, Session memory session)
        internal
        returns (uint256 count)
    {
        uint256 typed = session.typedData.length;
        count = typed + session.signIn.length;
        if (count > MAX_SIGNING_PERMISSIONS) revert InvalidSigningPermissionCount(count);
        SigningRecord storage record = _signingRecords[id][account];
        uint256 window = uint256(session.validAfter) | (uint256(session.validUntil) << 48);
        for (uint256 i = 0; i < typed; ++i) {
            TypedDataPermission memory permission = session.typedData[i];
            (bytes32 appSeparator, bytes32 contentsTypeHash, bytes32 typedDataSignTypeHash, uint256 nested) =
                signatureVerifier.typedDataGrant(account, i, permission);
            bytes32 key = SigningKeys.typedData(space, appSeparator, contentsTypeHash);
            SigningSlots storage slots = _signing[key][account];
            if (SigningHeader.isLive(slots.header)) revert SigningPermissionAlreadyGranted(i);
            Rule[] memory rules = permission.rules;
            for (uint256 r = 0; r < rules.length; ++r) {
                if (rules[r].offset % 32 != 0) revert InvalidRule(i, r);
            }
            (uint256[MAX_RULE_WORDS] memory words, uint256 w) = signatureVerifier.encodeRules(i, rules);
            for (uint256 k = 0; k < w; ++k) {
                slots.words[k] = words[k];
            }
            slots.typedDataSignTypeHash = typedDataSignTypeHash;
            slots.nested = nested;
            slots.header = SigningHeader.encode(window, i, rules.length, w);
            record.keys[i] = key;
        }
        for (uint256 j = 0; j < session.signIn.length; ++j) {
            bytes32 key = SigningKeys.signIn(space, _signInLineHash(j, session.signIn[j]));
            SigningSlots storage slots = _signing[key][account];
            if (SigningHeader.isLive(slots.header)) revert SigningPermissionAlreadyGranted(typed + j);
            slots.header = SigningHeader.encode(window, typed + j, 0, 0);
            record.keys[typed + j] = key;
        }
        if (count != 0) record.count = count; // a session without signing permissions writes nothing
    }

    /// @dev Clear the signing permissions of session `id` (revoked or invalidated); returns how many there were.
    function _clearSigning(address account, bytes32 id) internal returns (uint256 count) {
        SigningRecord storage record = _signingRecords[id][account];
        count = record.count;
        for (uint256 i = 0; i < count; ++i) {
            delete _signing[record.keys[i]][account].header;
        }
        if (count != 0) record.count = 0;
    }

    /// @dev keccak256 of a sign-in permission's first line; reverts unless the domain is 1 to 255 printable ASCII
    ///      bytes without spaces.
    function _signInLineHash(uint256 index, string memory domain) internal pure returns (bytes32) {
        bytes memory d = bytes(domain);
        if (d.length == 0 || d.length > 255) revert InvalidSignInDomain(index);
        for (uint256 i = 0; i < d.length; ++i) {
            if (d[i] < 0x21 || d[i] > 0x7e) revert InvalidSignInDomain(index);
        }
        return keccak256(abi.encodePacked(d, SigningKeys.SIGN_IN_SUFFIX));
    }
}
