// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ISessionKeyValidator} from "./interfaces/ISessionKeyValidator.sol";
import {SessionCoSigning} from "./SessionCoSigning.sol";
import {SigningHeader} from "./SessionSignatureVerifier.sol";

/// @title SessionSigning
/// @notice The module's side of sessions' ERC-1271 signatures: the signing permissions a grant gives (typed data of
///         granted domains and types with rules on their fields, EIP-4361 sign-in for granted websites), where they
///         are stored ({SessionGrants} stores them), and `isValidSignatureWithSender`, which asks the module's {SessionSignatureVerifier} to judge
///         a signature against them.
/// @dev Storage ({SessionStorage}, keyed by the account, innermost):
///     _signing[signingKey][account]        header ({SigningHeader}), TypedDataSign typehash, nested list, rule words
///     _signingRecords[sessionId][account]  the session's signing keys, to clear them when it dies
/// Signing keys are {SigningKeys}': under the session key, or under a co-signed session's space.
abstract contract SessionSigning is SessionCoSigning {
    /*//////////////////////////////////////////////////////////////
                               ERC-1271
    //////////////////////////////////////////////////////////////*/

    /// @notice ERC-1271 through the account: whether `signature` is a session's signature of `hash` that its signing
    ///         permissions allow, for the calling account, asked by `sender` (never the account, this module or
    ///         another module of the account).
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
}
