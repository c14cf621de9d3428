// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ISessionKeyValidator} from "./interfaces/ISessionKeyValidator.sol";
import {SessionStorage} from "./SessionStorage.sol";

/// @title SessionCoSigning
/// @notice Co-signed sessions: a grant may name a co-signer, an ECDSA key whose signature every operation and every
///         ERC-1271 signature of the session then needs besides the session key's.
/// @dev What the co-signer signs, in this module's EIP-712 domain:
///
///     CoSign(bytes32 sessionId,bytes32 digest)
///
/// `digest` is the userOpHash of an operation, or the ERC-7739 hash a session key signed for a message. The session
/// key signs the userOpHash itself (raw ECDSA), so the two signatures sign different digests and cannot stand in for
/// each other; the session id binds the account and the session, the domain the chain and the module.
///
/// A co-signed session's permissions are stored under a space address derived from its id ({_coSignedSpace}), not
/// under its session key: the one-signature modes, which look permissions up under the signing key, find none of
/// them, and the SESSION mode (the validator's) reaches them only with both signatures.
///
/// The owner records, rotates and removes co-signers through {SessionGrants}. Storage ({SessionStorage}, keyed by
/// the account, innermost): `_coSigners[sessionId][account]` = CO_SIGNED flag (bit 160) | the
/// co-signer (bits 0-159; 0 once the owner removed it). The flag stays when the co-signer is removed, since the
/// session's permissions stay in its space.
abstract contract SessionCoSigning is ISessionKeyValidator, SessionStorage {
    bytes32 internal constant CO_SIGN_TYPEHASH = keccak256("CoSign(bytes32 sessionId,bytes32 digest)");

    /*//////////////////////////////////////////////////////////////
                                VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc ISessionKeyValidator
    function coSignerOf(address account, bytes32 id) external view override returns (bool coSigned, address coSigner) {
        return _coSignerRecord(account, id);
    }

    /// @inheritdoc ISessionKeyValidator
    function digestToCoSign(bytes32 id, bytes32 digest) external view override returns (bytes32) {
        return _coSignDigest(id, digest);
    }

    /*//////////////////////////////////////////////////////////////
                               INTERNAL
    //////////////////////////////////////////////////////////////*/

    /// @dev The EIP-712 digest the co-signer of session `id` signs for `digest`.
    function _coSignDigest(bytes32 id, bytes32 digest) internal view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(CO_SIGN_TYPEHASH, id, digest)));
    }

    /// @dev Whether `coSignature` is what a co-signed session `id` whose co-signer is `coSigner` needs for `digest`:
    ///      nothing once the co-signer was removed, else the co-signer's 65-byte ECDSA signature of the CoSign digest.
    function _coSignatureValid(address coSigner, bytes32 id, bytes32 digest, bytes calldata coSignature)
        internal
        view
        returns (bool)
    {
        if (coSigner == address(0)) return coSignature.length == 0;
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(_coSignDigest(id, digest), coSignature);
        return err == ECDSA.RecoverError.NoError && recovered == coSigner;
    }
}
