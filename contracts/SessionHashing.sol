// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ISessionKeyValidatorTypes} from "./interfaces/ISessionKeyValidator.sol";

/// @title SessionHashing
/// @notice The EIP-712 struct hash of a grant's `Session` (the session id, before the domain the owner signs it in).
/// @dev Used by {SessionSignatureVerifier}, which the module asks for it: the hashing code then lives outside the
///      module, which must stay within EIP-170's 24,576 bytes. Only granting pays the call; operations never hash a
///      session.
library SessionHashing {
    bytes32 internal constant RULE_TYPEHASH =
        keccak256("Rule(uint8 condition,uint16 offset,uint8 argType,uint256[] values)");
    bytes32 internal constant PERMISSION_TYPEHASH = keccak256(
        "Permission(address target,bytes4 selector,uint256 valueLimit,Rule[] rules)"
        "Rule(uint8 condition,uint16 offset,uint8 argType,uint256[] values)"
    );
    bytes32 internal constant METER_TYPEHASH = keccak256("Meter(uint8 permission,uint16 offset)");
    bytes32 internal constant LIMIT_TYPEHASH =
        keccak256("Limit(uint8 kind,uint256 amount,uint32 period,Meter[] meters)Meter(uint8 permission,uint16 offset)");
    bytes32 internal constant TYPED_DATA_PERMISSION_TYPEHASH = keccak256(
        "TypedDataPermission(uint8 domainFields,string name,string version,uint256 chainId,address verifyingContract,"
        "bytes32 salt,string contentsName,string contentsType,uint16[] nested,Rule[] rules)"
        "Rule(uint8 condition,uint16 offset,uint8 argType,uint256[] values)"
    );
    /// @dev The fields in one order, here, in the interface's struct, in the SDK and in docs/session-module.md.
    bytes32 internal constant SESSION_TYPEHASH = keccak256(
        "Session(address account,address sessionKey,uint48 validAfter,uint48 validUntil,uint256 maxGasCost,"
        "address[] paymasters,uint32 epoch,uint256 salt,Permission[] permissions,Limit[] limits,address coSigner,"
        "TypedDataPermission[] typedData,string[] signIn)"
        "Limit(uint8 kind,uint256 amount,uint32 period,Meter[] meters)" "Meter(uint8 permission,uint16 offset)"
        "Permission(address target,bytes4 selector,uint256 valueLimit,Rule[] rules)"
        "Rule(uint8 condition,uint16 offset,uint8 argType,uint256[] values)"
        "TypedDataPermission(uint8 domainFields,string name,string version,uint256 chainId,address verifyingContract,"
        "bytes32 salt,string contentsName,string contentsType,uint16[] nested,Rule[] rules)"
    );

    /// @dev EIP-712 struct hash of `session` for `account` at `epoch`: the session id.
    function sessionStructHash(address account, uint32 epoch, ISessionKeyValidatorTypes.Session memory session)
        internal
        pure
        returns (bytes32)
    {
        (bytes32 typedDataHash, bytes32 signInHash) = signingFieldHashes(session);
        return keccak256(
            bytes.concat(
                abi.encode(
                    SESSION_TYPEHASH,
                    account,
                    session.sessionKey,
                    session.validAfter,
                    session.validUntil,
                    session.maxGasCost,
                    keccak256(abi.encodePacked(session.paymasters)),
                    epoch,
                    session.salt,
                    permissionListHash(session.permissions)
                ),
                abi.encode(limitListHash(session.limits), session.coSigner, typedDataHash, signInHash)
            )
        );
    }

    /// @dev EIP-712 encoding of a Permission[] field: keccak256 of the permissions' struct hashes.
    function permissionListHash(ISessionKeyValidatorTypes.Permission[] memory permissions) internal pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](permissions.length);
        for (uint256 i = 0; i < permissions.length; ++i) {
            ISessionKeyValidatorTypes.Permission memory permission = permissions[i];
            hashes[i] = keccak256(
                abi.encode(
                    PERMISSION_TYPEHASH,
                    permission.target,
                    permission.selector,
                    permission.valueLimit,
                    ruleListHash(permission.rules)
                )
            );
        }
        return keccak256(abi.encodePacked(hashes));
    }

    /// @dev EIP-712 encoding of a Rule[] field: keccak256 of the rules' struct hashes.
    function ruleListHash(ISessionKeyValidatorTypes.Rule[] memory rules) internal pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](rules.length);
        for (uint256 r = 0; r < rules.length; ++r) {
            ISessionKeyValidatorTypes.Rule memory rule = rules[r];
            hashes[r] = keccak256(
                abi.encode(
                    RULE_TYPEHASH, rule.condition, rule.offset, rule.argType, keccak256(abi.encodePacked(rule.values))
                )
            );
        }
        return keccak256(abi.encodePacked(hashes));
    }

    /// @dev EIP-712 encoding of a Limit[] field.
    function limitListHash(ISessionKeyValidatorTypes.Limit[] memory limits) internal pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](limits.length);
        for (uint256 i = 0; i < limits.length; ++i) {
            ISessionKeyValidatorTypes.Limit memory limit = limits[i];
            bytes32[] memory meterHashes = new bytes32[](limit.meters.length);
            for (uint256 m = 0; m < limit.meters.length; ++m) {
                meterHashes[m] = keccak256(abi.encode(METER_TYPEHASH, limit.meters[m].permission, limit.meters[m].offset));
            }
            hashes[i] = keccak256(
                abi.encode(LIMIT_TYPEHASH, limit.kind, limit.amount, limit.period, keccak256(abi.encodePacked(meterHashes)))
            );
        }
        return keccak256(abi.encodePacked(hashes));
    }

    /// @dev EIP-712 encodings of a session's signing fields: TypedDataPermission[] typedData, string[] signIn.
    function signingFieldHashes(ISessionKeyValidatorTypes.Session memory session)
        internal
        pure
        returns (bytes32 typedDataHash, bytes32 signInHash)
    {
        uint256 typed = session.typedData.length;
        bytes32[] memory hashes = new bytes32[](typed);
        for (uint256 i = 0; i < typed; ++i) {
            ISessionKeyValidatorTypes.TypedDataPermission memory p = session.typedData[i];
            hashes[i] = keccak256(
                bytes.concat(
                    abi.encode(
                        TYPED_DATA_PERMISSION_TYPEHASH,
                        p.domainFields,
                        keccak256(bytes(p.name)),
                        keccak256(bytes(p.version)),
                        p.chainId,
                        p.verifyingContract,
                        p.salt
                    ),
                    abi.encode(
                        keccak256(bytes(p.contentsName)),
                        keccak256(bytes(p.contentsType)),
                        keccak256(abi.encodePacked(p.nested)),
                        ruleListHash(p.rules)
                    )
                )
            );
        }
        typedDataHash = keccak256(abi.encodePacked(hashes));
        bytes32[] memory domains = new bytes32[](session.signIn.length);
        for (uint256 j = 0; j < domains.length; ++j) {
            domains[j] = keccak256(bytes(session.signIn[j]));
        }
        signInHash = keccak256(abi.encodePacked(domains));
    }
}
