// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {AccountModules} from "./AccountModules.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {ISessionKeyValidator, ISessionKeyValidatorTypes} from "./interfaces/ISessionKeyValidator.sol";
import {ArgType, MAX_RULE_WORDS, RuleEncoding, RuleWord} from "./Rules.sol";
import {SessionHashing} from "./SessionHashing.sol";

/// @title SigningHeader
/// @notice Decodes and encodes the header word of a signing permission: one per (space, domain, type) or (space,
///         sign-in website), and account.
/// @dev Bit ranges, least significant first:
///
///     [  0,  48)  validAfter        [ 48,  96)  validUntil (0: none)     [ 96, 104)  permission index
///     [104, 112)  rule count        [112, 120)  rule words               [120, 248)  zero
///     [248, 249)  live flag
library SigningHeader {
    uint256 internal constant LIVE = 1 << 248;

    function encode(uint256 window_, uint256 index_, uint256 ruleCount_, uint256 ruleWords_)
        internal
        pure
        returns (uint256)
    {
        return window_ | (index_ << 96) | (ruleCount_ << 104) | (ruleWords_ << 112) | LIVE;
    }

    function isLive(uint256 header) internal pure returns (bool) {
        return header & LIVE != 0;
    }

    function validAfter(uint256 header) internal pure returns (uint256) {
        return uint48(header);
    }

    function validUntil(uint256 header) internal pure returns (uint256) {
        return uint48(header >> 48);
    }

    function index(uint256 header) internal pure returns (uint256) {
        return uint8(header >> 96);
    }

    function ruleCount(uint256 header) internal pure returns (uint256) {
        return uint8(header >> 104);
    }

    function ruleWords(uint256 header) internal pure returns (uint256) {
        return uint8(header >> 112);
    }
}

/// @title SigningKeys
/// @notice Where signing permissions are found: their keys in the module's storage.
/// @dev keccak256(0x01 | space | appDomainSeparator | contentsTypeHash) for typed data (85 bytes),
///      keccak256(0x02 | space | keccak256(first line)) for sign-in (53 bytes); `space` is the session key, or a
///      co-signed session's space.
library SigningKeys {
    /// @dev What follows the website in the first line of an EIP-4361 message.
    bytes internal constant SIGN_IN_SUFFIX = " wants you to sign in with your Ethereum account:\n";

    function typedData(address space, bytes32 appSeparator, bytes32 contentsTypeHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(bytes1(0x01), space, appSeparator, contentsTypeHash));
    }

    function signIn(address space, bytes32 lineHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(bytes1(0x02), space, lineHash));
    }
}

/// @title SessionSignatureVerifier
/// @notice Judges sessions' ERC-1271 signatures for one SessionKeyValidator (the module that creates it), and reads
///         the typed-data permissions it grants: typed data of the granted domains and types, with rules on their
///         fields, and EIP-4361 sign-in messages for the granted websites, each wrapped in ERC-7739's nested typed
///         data so that a session's signature holds for one account, on one chain, through one module.
/// @dev Stateless: the permissions, sessions and co-signers are the module's, read through its views. It is a
///      contract of its own so that the module stays within EIP-170's code size; the module creates it in its
///      constructor, so deploying the module deploys it.
///
/// The module must judge the values behind the hash a verifier asks about, and those only reach it through the
/// signature: the signature carries the contents' EIP-712 words (and the words of the nested structs the grant
/// expands), the verifier rebuilds the hash from them, and the rules read those very words.
///
/// ERC-1271 signature layouts (what the account hands the module after its own routing prefix):
///
///     TYPED DATA  0x01 | who | key (20) or sessionId (32) | signatures | appDomainSeparator (32)
///                 | contentsTypeHash (32) | n (1) | frame sizes (n x 1 byte) | nested typehashes ((n-1) x 32)
///                 | words (32 x the sum of the sizes: frame 0, the primary struct, then frames 1..n-1)
///     SIGN-IN     0x02 | who | key (20) or sessionId (32) | signatures | first line's length (2) | message
///
///     who 0x00: a session without co-signer, its key follows, signatures = the key's ECDSA of H (65 bytes)
///     who 0x01: a co-signed session whose co-signer was removed, its id follows, signatures = the key's (65)
///     who 0x02: a co-signed session, its id follows, signatures = the key's (65) | the co-signer's (65)
///
/// H, what the session key signs (ERC-7739), with the account's domain as the module describes it (name
/// "keyscope Session", version "1", chainId, verifyingContract = the account, salt = the module's address):
///
///     typed data  keccak256(0x1901 | appDomainSeparator | hashStruct(TypedDataSign{contents, name, version,
///                 chainId, verifyingContract, salt}))
///     sign-in     keccak256(0x1901 | accountDomainSeparator | keccak256(PERSONAL_SIGN_TYPEHASH | EIP-191 hash))
///
/// The co-signer of a co-signed session signs the module's CoSign(sessionId, H) digest.
contract SessionSignatureVerifier {
    /// @notice Most nested structs one typed-data permission expands.
    uint256 public constant MAX_NESTED = 8;
    /// @notice Longest contentsType, in bytes.
    uint256 public constant MAX_CONTENTS_TYPE = 2048;

    bytes1 internal constant SIGN_TYPED_DATA = 0x01;
    bytes1 internal constant SIGN_IN = 0x02;
    uint256 internal constant WHO_KEY = 0;
    uint256 internal constant WHO_SESSION = 1;
    uint256 internal constant WHO_CO_SIGNED = 2;

    bytes32 internal constant ACCOUNT_DOMAIN_TYPEHASH = keccak256(
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)"
    );
    bytes32 internal constant ACCOUNT_DOMAIN_NAME_HASH = keccak256("keyscope Session");
    bytes32 internal constant ACCOUNT_DOMAIN_VERSION_HASH = keccak256("1");
    bytes32 internal constant PERSONAL_SIGN_TYPEHASH = keccak256("PersonalSign(bytes prefixed)");
    bytes32 internal constant KERNEL_WRAPPER_TYPEHASH = keccak256("Kernel(bytes32 hash)");

    /// @dev Who signed a session signature, from its header: the session key, where its permissions are, and for a
    ///      co-signed session its id and co-signer.
    struct Signer {
        address key;
        address space;
        bytes32 id;
        bool coSigned;
        address coSigner;
    }

    /// @notice The module this verifier judges signatures for (its creator).
    ISessionKeyValidator public immutable module;

    constructor() {
        module = ISessionKeyValidator(msg.sender);
    }

    /*//////////////////////////////////////////////////////////////
                                VERIFYING
    //////////////////////////////////////////////////////////////*/

    /// @notice Why `signature` is not a valid session signature of `hash` for `account` when `sender` asks: the
    ///         ABI-encoded refusal error (declared on ISessionKeyValidator), empty when it is valid.
    function refusal(address account, address sender, bytes32 hash, bytes calldata signature)
        external
        view
        returns (bytes memory)
    {
        // the account, the module, or another module of the account: modules take the account's ERC-1271 signature as
        // its owner's approval of their configuration (another validator's grants), so a session signs for none of
        // them, whenever it was installed (enabling refuses a signing domain naming a module installed by then)
        if (sender == account || sender == address(module)) {
            return abi.encodeWithSelector(ISessionKeyValidatorTypes.SignatureSenderForbidden.selector, sender);
        }
        // the zero address (an eth_call without a sender, as many off-chain verifiers make) runs no code, so it acts
        // on no approval; and an account keeping one hook slot says its empty slot, address(0), is an installed hook
        if (sender != address(0)) {
            (bool isModule,) = AccountModules.moduleOf(account, sender, false);
            if (isModule) {
                return abi.encodeWithSelector(ISessionKeyValidatorTypes.SignatureSenderForbidden.selector, sender);
            }
        }
        (bool ok, Signer memory signer, uint256 at) = _signer(account, signature);
        if (!ok) return _malformed();
        uint256 sigs = signer.coSigned && signer.coSigner != address(0) ? 130 : 65;
        bytes calldata signatures = signature[at:at + sigs];
        if (signature[0] == SIGN_TYPED_DATA) {
            return _typedDataRefusal(account, hash, signer, signatures, signature[at + sigs:]);
        }
        return _signInRefusal(account, hash, signer, signatures, signature[at + sigs:]);
    }

    /*//////////////////////////////////////////////////////////////
                      FOR GRANTS (the module's EIP-170 room)
    //////////////////////////////////////////////////////////////*/

    // Granting code the module runs only when it enables a session or hashes one: here, it keeps the module within
    // EIP-170's 24,576 bytes. Operations of enabled sessions never call these.

    /// @notice The session id of a session granted to `account` at `epoch`: its EIP-712 struct hash
    ///         ({SessionHashing}). `encoded` starts with an ABI encoding of the Session (trailing fields allowed:
    ///         ENABLE data, `abi.encode(Session, bytes, bytes)`, is passed as it is).
    function sessionStructHash(address account, uint32 epoch, bytes calldata encoded)
        external
        pure
        returns (bytes32)
    {
        return SessionHashing.sessionStructHash(account, epoch, abi.decode(encoded, (ISessionKeyValidatorTypes.Session)));
    }

    /// @notice The session id of the session in `args`, the arguments of a module call `(address account, Session)`
    ///         (sessionId, grantDigest), at `epoch`.
    function sessionStructHashOfCall(uint32 epoch, bytes calldata args) external pure returns (bytes32) {
        (address account, ISessionKeyValidatorTypes.Session memory session) =
            abi.decode(args, (address, ISessionKeyValidatorTypes.Session));
        return SessionHashing.sessionStructHash(account, epoch, session);
    }

    /// @notice The session ids of `abi.encode(Session[])` (onInstall's data) granted to `account` at `epoch`.
    function sessionStructHashes(address account, uint32 epoch, bytes calldata encoded)
        external
        pure
        returns (bytes32[] memory ids)
    {
        ISessionKeyValidatorTypes.Session[] memory sessions = abi.decode(encoded, (ISessionKeyValidatorTypes.Session[]));
        ids = new bytes32[](sessions.length);
        for (uint256 i = 0; i < sessions.length; ++i) {
            ids[i] = SessionHashing.sessionStructHash(account, epoch, sessions[i]);
        }
    }

    /// @notice Check and encode the rules of permission `permissionIndex` ({RuleEncoding}): the storage words and
    ///         how many; reverts with the module's error on a malformed rule.
    function encodeRules(uint256 permissionIndex, ISessionKeyValidatorTypes.Rule[] calldata rules)
        external
        pure
        returns (uint256[MAX_RULE_WORDS] memory words, uint256 count)
    {
        return RuleEncoding.encode(permissionIndex, rules);
    }

    /// @notice The separator of the EIP-712 domain the module describes `account` by in ERC-7739 wrappings: name
    ///         "keyscope Session", version "1", this chain, the account, the module's address as the salt.
    function accountDomainSeparator(address account) public view returns (bytes32) {
        return keccak256(
            abi.encode(
                ACCOUNT_DOMAIN_TYPEHASH,
                ACCOUNT_DOMAIN_NAME_HASH,
                ACCOUNT_DOMAIN_VERSION_HASH,
                block.chainid,
                account,
                bytes32(uint256(uint160(address(module))))
            )
        );
    }

    /// @dev Read the header of a session signature: kind, `who`, key or session id. Returns where the signatures
    ///      start; ok = false when the layout is not one of the session signatures' or `who` does not match the
    ///      session (a co-signature present where the session has none, or missing where it has one).
    function _signer(address account, bytes calldata signature)
        internal
        view
        returns (bool ok, Signer memory signer, uint256 at)
    {
        if (signature.length < 2 || (signature[0] != SIGN_TYPED_DATA && signature[0] != SIGN_IN)) {
            return (false, signer, 0);
        }
        uint256 who = uint8(signature[1]);
        if (who == WHO_KEY) {
            if (signature.length < 22 + 65) return (false, signer, 0);
            signer.key = address(bytes20(signature[2:22]));
            signer.space = signer.key;
            return (true, signer, 22);
        }
        if (who != WHO_SESSION && who != WHO_CO_SIGNED) return (false, signer, 0);
        if (signature.length < 34 + (who == WHO_CO_SIGNED ? 130 : 65)) return (false, signer, 0);
        signer.id = bytes32(signature[2:34]);
        (signer.key, signer.space, signer.coSigned, signer.coSigner) = module.sessionSignerOf(account, signer.id);
        if (!signer.coSigned || (who == WHO_CO_SIGNED) != (signer.coSigner != address(0))) return (false, signer, 0);
        return (true, signer, 34);
    }

    /// @dev The refusal of a typed-data signature (see the layout above), empty when it is valid.
    function _typedDataRefusal(
        address account,
        bytes32 hash,
        Signer memory signer,
        bytes calldata signatures,
        bytes calldata body
    ) internal view returns (bytes memory) {
        if (body.length < 65) return _malformed();
        bytes32 appSeparator = bytes32(body[:32]);
        bytes32 contentsTypeHash = bytes32(body[32:64]);
        (uint256 header, bytes32 typedDataSignTypeHash, uint256 nested, uint256[] memory rules) =
            module.signingPermission(account, SigningKeys.typedData(signer.space, appSeparator, contentsTypeHash));
        if (!SigningHeader.isLive(header)) {
            return abi.encodeWithSelector(
                ISessionKeyValidatorTypes.SigningNotGranted.selector, signer.space, appSeparator, contentsTypeHash
            );
        }
        bytes memory refused = _windowRefusal(header);
        if (refused.length != 0) return refused;

        // the frames: the primary struct's words, then each nested struct the grant expands
        bytes calldata words;
        (refused, words) = _frames(nested, body);
        if (refused.length != 0) return refused;
        bytes32 contentsHash = _hashWords(contentsTypeHash, words[:uint256(uint8(body[65])) * 32]);
        bytes32 appHash = keccak256(abi.encodePacked(hex"1901", appSeparator, contentsHash));
        if (hash != appHash && !_wrappedByAccount(account, hash, appHash)) {
            return abi.encodeWithSelector(ISessionKeyValidatorTypes.ContentsMismatch.selector, hash, contentsHash);
        }
        refused = _ruleRefusal(rules, header, words);
        if (refused.length != 0) return refused;

        bytes32 signed = keccak256(
            abi.encodePacked(
                hex"1901",
                appSeparator,
                keccak256(
                    abi.encode(
                        typedDataSignTypeHash,
                        contentsHash,
                        ACCOUNT_DOMAIN_NAME_HASH,
                        ACCOUNT_DOMAIN_VERSION_HASH,
                        block.chainid,
                        account,
                        bytes32(uint256(uint160(address(module))))
                    )
                )
            )
        );
        return _signaturesRefusal(signer, signed, signatures);
    }

    /// @dev Check the frames of a typed-data body against the grant's nested list: their layout, and that each
    ///      nested frame hashes (with the typehash the signature gives it) to the word of an earlier frame the grant
    ///      expands. Returns the flattened words.
    function _frames(uint256 nested, bytes calldata body)
        internal
        pure
        returns (bytes memory refused, bytes calldata words)
    {
        uint256 n = uint8(body[64]);
        words = body[:0];
        if (n != (nested & 0xff) + 1 || body.length < 65 + n) return (_malformed(), words);
        uint256 typeHashesAt = 65 + n;
        uint256 wordsAt = typeHashesAt + 32 * (n - 1);
        uint256 total = 0;
        for (uint256 k = 0; k < n; ++k) {
            total += uint8(body[65 + k]);
        }
        if (body.length != wordsAt + 32 * total) return (_malformed(), words);
        words = body[wordsAt:];
        uint256 start = uint8(body[65]);
        for (uint256 k = 1; k < n; ++k) {
            uint256 size = uint8(body[65 + k]);
            uint256 parent = (nested >> (8 + 16 * (k - 1))) & 0xffff;
            bytes32 typeHash = bytes32(body[typeHashesAt + 32 * (k - 1):typeHashesAt + 32 * k]);
            if (
                parent >= start
                    || _hashWords(typeHash, words[32 * start:32 * (start + size)])
                        != bytes32(words[32 * parent:32 * parent + 32])
            ) {
                return (abi.encodeWithSelector(ISessionKeyValidatorTypes.NestedStructMismatch.selector, k), words);
            }
            start += size;
        }
    }

    /// @dev The refusal of a sign-in signature (see the layout above), empty when it is valid.
    function _signInRefusal(
        address account,
        bytes32 hash,
        Signer memory signer,
        bytes calldata signatures,
        bytes calldata body
    ) internal view returns (bytes memory) {
        if (body.length < 2) return _malformed();
        uint256 lineLength = uint16(bytes2(body[:2]));
        bytes calldata message = body[2:];
        if (lineLength > message.length) return _malformed();
        bytes32 lineHash = keccak256(message[:lineLength]);
        (uint256 header,,,) = module.signingPermission(account, SigningKeys.signIn(signer.space, lineHash));
        if (!SigningHeader.isLive(header)) {
            return abi.encodeWithSelector(ISessionKeyValidatorTypes.SignInNotGranted.selector, signer.space, lineHash);
        }
        bytes memory refused = _windowRefusal(header);
        if (refused.length != 0) return refused;
        bytes32 messageHash = keccak256(
            abi.encodePacked("\x19Ethereum Signed Message:\n", Strings.toString(message.length), message)
        );
        if (hash != messageHash && !_wrappedByAccount(account, hash, messageHash)) {
            return abi.encodeWithSelector(ISessionKeyValidatorTypes.ContentsMismatch.selector, hash, messageHash);
        }
        if (!_isAddressLine(message[lineLength:], account)) {
            return abi.encodeWithSelector(ISessionKeyValidatorTypes.SignInAccountMismatch.selector);
        }
        bytes32 signed = keccak256(
            abi.encodePacked(
                hex"1901", accountDomainSeparator(account), keccak256(abi.encode(PERSONAL_SIGN_TYPEHASH, messageHash))
            )
        );
        return _signaturesRefusal(signer, signed, signatures);
    }

    /// @dev Whether `line` starts with `account`'s address as "0x" and 40 hex digits (any case), then a line break.
    function _isAddressLine(bytes calldata line, address account) internal pure returns (bool) {
        if (line.length < 43 || line[0] != "0" || line[1] != "x" || line[42] != "\n") return false;
        uint256 value = uint160(account);
        for (uint256 i = 0; i < 40; ++i) {
            uint256 c = uint8(line[2 + i]);
            if (c >= 0x41 && c <= 0x46) c += 0x20; // A-F as a-f
            uint256 digit = (value >> (4 * (39 - i))) & 0xf;
            if (c != (digit < 10 ? 0x30 + digit : 0x57 + digit)) return false;
        }
        return true;
    }

    /// @dev The refusal when the chain's time is outside the window in a signing permission's header.
    function _windowRefusal(uint256 header) internal view returns (bytes memory) {
        uint256 after_ = SigningHeader.validAfter(header);
        uint256 until = SigningHeader.validUntil(header);
        if (block.timestamp < after_ || (until != 0 && block.timestamp > until)) {
            return abi.encodeWithSelector(
                ISessionKeyValidatorTypes.SignatureOutsideWindow.selector, block.timestamp, after_, until
            );
        }
        return "";
    }

    /// @dev The refusal when the session key's signature (and, co-signed, the co-signature) of `signed` is wrong.
    function _signaturesRefusal(Signer memory signer, bytes32 signed, bytes calldata signatures)
        internal
        view
        returns (bytes memory)
    {
        if (signer.key == address(0) || _recover(signed, signatures[:65]) != signer.key) {
            return abi.encodeWithSelector(ISessionKeyValidatorTypes.InvalidSessionSignature.selector);
        }
        if (
            signer.coSigned && signer.coSigner != address(0)
                && _recover(module.digestToCoSign(signer.id, signed), signatures[65:]) != signer.coSigner
        ) return abi.encodeWithSelector(ISessionKeyValidatorTypes.InvalidCoSignature.selector);
        return "";
    }

    /// @dev The signer of `hash` (65-byte ECDSA, low s), address(0) when it does not recover.
    function _recover(bytes32 hash, bytes calldata signature) internal pure returns (address) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        return err == ECDSA.RecoverError.NoError ? recovered : address(0);
    }

    /// @dev Whether `hash` is what an account that wraps hashes for its validators as Kernel does passes on for
    ///      `inner`: the EIP-712 hash of `Kernel(bytes32 hash)` in the account's own domain (ERC-5267
    ///      `eip712Domain()`, which must name the account and this chain). False for accounts without that domain.
    function _wrappedByAccount(address account, bytes32 hash, bytes32 inner) internal view returns (bool) {
        (bool success, bytes memory answer) = account.staticcall(abi.encodeWithSignature("eip712Domain()"));
        if (!success || answer.length < 224) return false;
        (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        ) = abi.decode(answer, (bytes1, string, string, uint256, address, bytes32, uint256[]));
        if (
            uint8(fields) > 0x1f || uint8(fields) & 0x0c != 0x0c || chainId != block.chainid
                || verifyingContract != account || extensions.length != 0
        ) return false;
        bytes32 separator = _domainSeparator(
            uint8(fields), keccak256(bytes(name)), keccak256(bytes(version)), chainId, verifyingContract, salt
        );
        return hash
            == keccak256(abi.encodePacked(hex"1901", separator, keccak256(abi.encode(KERNEL_WRAPPER_TYPEHASH, inner))));
    }

    /// @dev The rules of a typed-data permission (their storage words, {RuleWord}) on the flattened contents `words`,
    ///      judged as call rules are: the word's argType must be canonical, then the condition must hold.
    function _ruleRefusal(uint256[] memory rules, uint256 header, bytes calldata words)
        internal
        pure
        returns (bytes memory)
    {
        uint256 count = SigningHeader.ruleCount(header);
        uint256 permissionIndex = SigningHeader.index(header);
        uint256 at = 0;
        for (uint256 r = 0; r < count; ++r) {
            uint256 word = rules[at++];
            uint256 offset = RuleWord.offset(word);
            if (words.length < offset + 32) {
                return abi.encodeWithSelector(ISessionKeyValidatorTypes.ContentsTooShort.selector, permissionIndex, r);
            }
            uint256 actual = uint256(bytes32(words[offset:offset + 32]));
            uint256 argType = RuleWord.checkedType(word);
            if (argType != 0 && !ArgType.isCanonical(argType, actual)) {
                return abi.encodeWithSelector(
                    ISessionKeyValidatorTypes.SignedNonCanonical.selector, permissionIndex, r, uint8(argType), bytes32(actual)
                );
            }
            bool ok;
            (ok, at) = _holds(rules, word, actual, at);
            if (!ok) {
                return abi.encodeWithSelector(
                    ISessionKeyValidatorTypes.SignedRuleViolated.selector, permissionIndex, r, bytes32(actual)
                );
            }
        }
        return "";
    }

    /// @dev Whether `actual` meets the rule whose first word is `word` (its further words in `rules` from `at` on);
    ///      returns the index after the rule's words.
    function _holds(uint256[] memory rules, uint256 word, uint256 actual, uint256 at)
        internal
        pure
        returns (bool ok, uint256 next)
    {
        uint256 flags = RuleWord.flags(word);
        uint256 first = flags & RuleWord.WIDE != 0 ? rules[at++] : RuleWord.inlineValue(word);
        uint256 op = flags & 0x0f;
        if (op == RuleEncoding.EQUAL) return (actual == first, at);
        if (op == RuleEncoding.NOT_EQUAL) return (actual != first, at);
        if (op == RuleEncoding.ONE_OF) {
            uint256 end = at + RuleWord.valueCount(word) - 1; // the words of values 2..n
            ok = actual == first;
            while (!ok && at < end) {
                ok = actual == rules[at++];
            }
            return (ok, end);
        }
        // Ordering. Signed words compare as unsigned once their sign bits are flipped.
        uint256 flip = flags & RuleWord.SIGNED != 0 ? 1 << 255 : 0;
        uint256 a = actual ^ flip;
        uint256 b = first ^ flip;
        if (op == RuleEncoding.IN_RANGE) return (a >= b && a <= (rules[at++] ^ flip), at);
        if (op == 1) return (a <= b, at); // LESS_THAN_OR_EQUAL
        if (op == 2) return (a < b, at); // LESS_THAN
        if (op == 3) return (a >= b, at); // GREATER_THAN_OR_EQUAL
        return (a > b, at); // GREATER_THAN; other conditions are refused when the rule is stored
    }

    /// @dev keccak256(prefix | data), `data` read from calldata.
    function _hashWords(bytes32 prefix, bytes calldata data) internal pure returns (bytes32 result) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, prefix)
            calldatacopy(add(ptr, 0x20), data.offset, data.length)
            result := keccak256(ptr, add(0x20, data.length))
        }
    }

    function _malformed() internal pure returns (bytes memory) {
        return abi.encodeWithSelector(ISessionKeyValidatorTypes.MalformedSignature.selector);
    }

    /*//////////////////////////////////////////////////////////////
                                GRANTING
    //////////////////////////////////////////////////////////////*/

    /// @notice Read typed-data permission `index` of a session `account` is granted: the application's domain
    ///         separator, the primary type's typehash, ERC-7739's TypedDataSign typehash and the packed nested list
    ///         (count in the low byte, then 16 bits per entry). Reverts `InvalidTypedDataPermission` when it is
    ///         malformed, `ForbiddenSigningDomain` when its domain is the account's or the module's,
    ///         `TypedDataRuleTypeMismatch` when a rule's type is not its field's, `TypedDataRuleOrdersHash` when a
    ///         rule orders a field whose word is a hash.
    function typedDataGrant(address account, uint256 index, ISessionKeyValidatorTypes.TypedDataPermission calldata permission)
        external
        view
        returns (bytes32 appSeparator, bytes32 contentsTypeHash, bytes32 typedDataSignTypeHash, uint256 nested)
    {
        uint256 fields = permission.domainFields;
        if (
            fields > 0x1f || (fields & 0x01 == 0 && bytes(permission.name).length != 0)
                || (fields & 0x02 == 0 && bytes(permission.version).length != 0)
                || (fields & 0x04 == 0 && permission.chainId != 0)
                || (fields & 0x08 == 0 && permission.verifyingContract != address(0))
                || (fields & 0x10 == 0 && permission.salt != 0)
        ) revert ISessionKeyValidatorTypes.InvalidTypedDataPermission(index);
        address verifying = permission.verifyingContract;
        if (fields & 0x08 != 0 && (verifying == account || verifying == address(module))) {
            revert ISessionKeyValidatorTypes.ForbiddenSigningDomain(index, verifying);
        }
        appSeparator = _domainSeparator(
            fields,
            keccak256(bytes(permission.name)),
            keccak256(bytes(permission.version)),
            permission.chainId,
            verifying,
            permission.salt
        );
        bool ok;
        (contentsTypeHash, typedDataSignTypeHash, ok) =
            _contentsTypeHashes(bytes(permission.contentsName), bytes(permission.contentsType));
        if (!ok) revert ISessionKeyValidatorTypes.InvalidTypedDataPermission(index);
        uint16[] calldata list = permission.nested;
        if (list.length > MAX_NESTED) revert ISessionKeyValidatorTypes.InvalidTypedDataPermission(index);
        nested = list.length;
        for (uint256 k = 0; k < list.length; ++k) {
            if (k != 0 && list[k] <= list[k - 1]) revert ISessionKeyValidatorTypes.InvalidTypedDataPermission(index);
            nested |= uint256(list[k]) << (8 + 16 * k);
        }
        if (permission.rules.length != 0) _checkRuleTypes(index, permission);
    }

    /// @dev Reverts `TypedDataRuleTypeMismatch` when a rule of permission `index` on a field of its contents carries
    ///      another type than the field's, so that a signed word is judged as the type a verifier reads it as: the
    ///      atomic type's own ArgType, 0 (uint256) for a word that is a hash (string, bytes, an array, a struct the
    ///      contentsType defines), 0xff (none) for a type no rule type names. The fields are laid out from the
    ///      contentsType as EIP-712 flattens them: frame 0 the primary struct's members, then the members of each
    ///      struct `nested` expands, in its order. Reverts `InvalidTypedDataPermission` on a contentsType that is no
    ///      list of definitions `Name(type name,...)`, or a `nested` entry that is no struct member of a frame
    ///      before it. A rule past the contents reads no field: it passes here, and refuses every signature
    ///      (`ContentsTooShort`). Reverts `TypedDataRuleOrdersHash` when a rule orders a word that is a hash
    ///      (<=, <, >=, > or IN_RANGE on a string, bytes, array or struct field): it would bound the hash, not the
    ///      value the verifier reads, so any value would pass. Runs at grant time only; pure (no storage, no banned
    ///      opcode for ERC-7562).
    function _checkRuleTypes(uint256 index, ISessionKeyValidatorTypes.TypedDataPermission calldata permission)
        internal
        pure
    {
        bytes calldata types = bytes(permission.contentsType);
        bytes calldata name = bytes(permission.contentsName);
        uint16[] calldata list = permission.nested;
        ISessionKeyValidatorTypes.Rule[] calldata rules = permission.rules;
        uint256[MAX_NESTED + 1] memory frames; // definition ('(' | ')' << 16) | first word << 32 | words << 48
        uint256 failure; // 1: malformed, 2: a rule's type is not its field's
        uint256 ruleIndex;
        uint256 offset;
        uint256 ruleType;
        uint256 fieldType;
        assembly ("memory-safe") {
            function at(b, p) -> c {
                c := byte(0, calldataload(add(b, p)))
            }
            // the first definition whose name hashes to h (in the table from `from_` to `to_`: its name's hash, then
            // '(' | ')' << 16, per definition), as '(' | ')' << 16; 0: none
            function definition(from_, to_, h) -> d {
                for {} lt(from_, to_) { from_ := add(from_, 0x40) } {
                    if eq(mload(from_), h) {
                        d := mload(add(from_, 0x20))
                        leave
                    }
                }
            }
            // the members of definition d: how many (non-empty parts between its commas), and the type of member
            // i ([ks, ke): what precedes the part's last space)
            function member(b, d, i) -> count, ks, ke {
                let s := add(and(d, 0xffff), 1)
                let close := shr(16, d)
                let sp := s
                for { let q := s } 1 { q := add(q, 1) } {
                    let c := at(b, q)
                    if eq(c, 0x20) { sp := q }
                    if or(eq(q, close), eq(c, 0x2c)) {
                        if gt(q, s) {
                            if eq(count, i) {
                                ks := s
                                ke := sp
                            }
                            count := add(count, 1)
                        }
                        if eq(q, close) { break }
                        s := add(q, 1)
                        sp := s
                    }
                }
            }
            // the rule type of a field of type [ks, ke), 0x100 when its word is a hash (string, bytes, an array,
            // a struct), and a struct's definition in bits 16 and up
            function fieldType_(b, from_, to_, ks, ke) -> t {
                let n := sub(ke, ks)
                t := 0xff
                if iszero(n) { leave }
                let m := mload(0x40)
                calldatacopy(m, add(b, ks), n)
                let d := definition(from_, to_, keccak256(m, n))
                if d {
                    t := or(shl(16, d), 0x100)
                    leave
                }
                if eq(at(b, sub(ke, 1)), 0x5d) {
                    t := 0x100 // an array: ']'
                    leave
                }
                if gt(n, 8) { leave }
                let v := shr(sub(256, shl(3, n)), calldataload(add(b, ks)))
                switch or(shl(64, n), v)
                case 0x60000737472696e67 { t := 0x100 } // string
                case 0x50000006279746573 { t := 0x100 } // bytes
                case 0x40000000075696e74 { t := 0 } // uint
                case 0x30000000000696e74 { t := 0x20 } // int
                case 0x40000000062797465 { t := 0x5f } // byte
                case 0x400000000626f6f6c { t := 0x60 } // bool
                case 0x70061646472657373 { t := 0x0c } // address
                case 0x866756e6374696f6e { t := 0x48 } // function: bytes24
                default {
                    // uintN, intN (N of 8 to 256, a multiple of 8), bytesN (N of 1 to 32), N without a leading 0
                    let base := 0xff
                    let i := 0
                    if and(gt(n, 4), eq(shr(sub(shl(3, n), 32), v), 0x75696e74)) {
                        base := 0
                        i := 4
                    }
                    if and(gt(n, 3), eq(shr(sub(shl(3, n), 24), v), 0x696e74)) {
                        base := 0x20
                        i := 3
                    }
                    if and(gt(n, 5), eq(shr(sub(shl(3, n), 40), v), 0x6279746573)) {
                        base := 0x40
                        i := 5
                    }
                    if or(eq(base, 0xff), or(gt(sub(n, i), 3), eq(at(b, add(ks, i)), 0x30))) { leave }
                    let bits := 0
                    for {} lt(i, n) { i := add(i, 1) } {
                        let c := sub(at(b, add(ks, i)), 0x30)
                        if gt(c, 9) { leave }
                        bits := add(mul(bits, 10), c)
                    }
                    switch base
                    case 0x40 { if iszero(gt(bits, 32)) { t := or(0x40, sub(32, bits)) } }
                    default {
                        if and(iszero(mod(bits, 8)), iszero(gt(bits, 256))) { t := or(base, shr(3, sub(256, bits))) }
                    }
                }
            }
            // the field at flat word w of the first `frames_` frames at fr (0 when none holds it)
            function fieldAt(b, from_, to_, fr, frames_, w) -> t {
                for { let f := 0 } lt(f, frames_) { f := add(f, 1) } {
                    let frame := mload(add(fr, shl(5, f)))
                    let start := and(shr(32, frame), 0xffff)
                    if and(iszero(lt(w, start)), lt(w, add(start, shr(48, frame)))) {
                        let n_, ks, ke := member(b, and(frame, 0xffffffff), sub(w, start))
                        t := fieldType_(b, from_, to_, ks, ke)
                        leave
                    }
                }
            }

            let b := types.offset
            let size := types.length
            let m := mload(0x40)
            calldatacopy(m, name.offset, name.length)
            let primary := keccak256(m, name.length)
            // the definitions, read once: a name (not empty) then '(' first, members, then the first ')'; the table
            // sits past the scratch space that a member's type (at most MAX_CONTENTS_TYPE bytes) is hashed in
            let defs := add(m, MAX_CONTENTS_TYPE)
            let defsEnd := defs
            for { let p := 0 } lt(p, size) {} {
                let o := p
                let c := byte(0, calldataload(add(b, o)))
                for {} iszero(or(eq(c, 0x28), eq(c, 0x29))) {} {
                    o := add(o, 1)
                    c := byte(0, calldataload(add(b, o)))
                }
                if or(eq(o, p), eq(c, 0x29)) {
                    failure := 1
                    break
                }
                let e := o
                for {} iszero(eq(byte(0, calldataload(add(b, e))), 0x29)) {} { e := add(e, 1) }
                calldatacopy(m, add(b, p), sub(o, p))
                mstore(defsEnd, keccak256(m, sub(o, p)))
                mstore(add(defsEnd, 0x20), or(o, shl(16, e)))
                defsEnd := add(defsEnd, 0x40)
                p := add(e, 1)
            }
            let inner := definition(defs, defsEnd, primary) // the frame to lay out next
            if iszero(inner) { failure := 1 }
            let end := 0 // the flat words of the frames laid out
            let count := 0 // the frames laid out
            let nested := list.length
            let last := add(nested, rules.length)
            // the nested entries (each expands a struct member of a frame before it), then the rules
            for { let j := 0 } iszero(failure) { j := add(j, 1) } {
                if inner {
                    let words, ks, ke := member(b, inner, 0)
                    mstore(add(frames, shl(5, count)), or(or(inner, shl(32, end)), shl(48, words)))
                    end := add(end, words)
                    count := add(count, 1)
                    inner := 0
                }
                if eq(j, last) { break }
                let w := 0
                let rule := 0
                let off := 0
                switch lt(j, nested)
                case 1 { w := calldataload(add(list.offset, shl(5, j))) }
                default {
                    rule := add(rules.offset, calldataload(add(rules.offset, shl(5, sub(j, nested)))))
                    off := calldataload(add(rule, 0x20))
                    // a misaligned offset reads no field (InvalidRule), nor does one past the contents
                    w := end
                    if iszero(and(off, 31)) { w := shr(5, off) }
                }
                let t := 0
                if lt(w, end) { t := fieldAt(b, defs, defsEnd, frames, count, w) }
                switch rule
                case 0 {
                    inner := shr(16, t)
                    if iszero(inner) { failure := 1 }
                }
                default {
                    let rt := calldataload(add(rule, 0x40))
                    if and(lt(w, end), iszero(eq(and(t, 0xff), rt))) {
                        failure := 2
                        ruleIndex := sub(j, nested)
                        offset := off
                        ruleType := rt
                        fieldType := and(t, 0xff)
                    }
                    // a hash has no order: <=, <, >=, > and IN_RANGE (conditions 1-4, 6) on it bound nothing the
                    // verifier reads (EQUAL, NOT_EQUAL and ONE_OF bind what was hashed)
                    let condition := calldataload(rule)
                    if and(and(iszero(failure), shr(8, and(t, 0x100))), lt(0, and(shl(condition, 1), 0x5e))) {
                        failure := 3
                        ruleIndex := sub(j, nested)
                        offset := off
                        ruleType := condition
                    }
                }
            }
        }
        if (failure == 1) revert ISessionKeyValidatorTypes.InvalidTypedDataPermission(index);
        if (failure == 2) {
            revert ISessionKeyValidatorTypes.TypedDataRuleTypeMismatch(
                index, ruleIndex, offset, uint8(ruleType), uint8(fieldType)
            );
        }
        if (failure == 3) {
            revert ISessionKeyValidatorTypes.TypedDataRuleOrdersHash(index, ruleIndex, offset, uint8(ruleType));
        }
    }

    /// @dev The separator of the EIP-712 domain with the ERC-5267 `fields` and these values.
    function _domainSeparator(
        uint256 fields,
        bytes32 nameHash,
        bytes32 versionHash,
        uint256 chainId,
        address verifyingContract,
        bytes32 salt
    ) internal pure returns (bytes32) {
        bytes memory typeString = "EIP712Domain(";
        bytes memory values;
        if (fields & 0x01 != 0) {
            typeString = abi.encodePacked(typeString, "string name,");
            values = abi.encodePacked(values, nameHash);
        }
        if (fields & 0x02 != 0) {
            typeString = abi.encodePacked(typeString, "string version,");
            values = abi.encodePacked(values, versionHash);
        }
        if (fields & 0x04 != 0) {
            typeString = abi.encodePacked(typeString, "uint256 chainId,");
            values = abi.encodePacked(values, chainId);
        }
        if (fields & 0x08 != 0) {
            typeString = abi.encodePacked(typeString, "address verifyingContract,");
            values = abi.encodePacked(values, uint256(uint160(verifyingContract)));
        }
        if (fields & 0x10 != 0) {
            typeString = abi.encodePacked(typeString, "bytes32 salt,");
            values = abi.encodePacked(values, salt);
        }
        if (fields == 0) typeString = abi.encodePacked(typeString, ")");
        else typeString[typeString.length - 1] = ")";
        return keccak256(abi.encodePacked(keccak256(typeString), values));
    }

    /// @dev From ERC-7739's contentsName and contentsType (every definition the contents use, sorted by name): the
    ///      primary type's typehash (its definition first, then the others, as EIP-712's encodeType puts them) and
    ///      the TypedDataSign typehash. ok = false for an invalid name (empty, starting with a-z or '(', holding
    ///      ", ()" or NUL), a contentsType not ending with ')', too long, or without a definition of the name.
    function _contentsTypeHashes(bytes memory name, bytes memory types)
        internal
        pure
        returns (bytes32 contentsTypeHash, bytes32 typedDataSignTypeHash, bool ok)
    {
        uint256 size = types.length;
        if (name.length == 0 || size == 0 || size > MAX_CONTENTS_TYPE || types[size - 1] != ")") {
            return (0, 0, false);
        }
        if ((name[0] >= "a" && name[0] <= "z") || name[0] == "(") return (0, 0, false);
        for (uint256 i = 0; i < name.length; ++i) {
            bytes1 c = name[i];
            if (c == 0x00 || c == " " || c == "," || c == "(" || c == ")") return (0, 0, false);
        }
        // the definition of `name`: at the start or right after a ')', followed by '('
        uint256 start = size;
        for (uint256 p = 0; p + name.length < size;) {
            if (types[p + name.length] == "(" && _startsWith(types, p, name)) {
                start = p;
                break;
            }
            while (p < size && types[p] != ")") ++p;
            ++p;
        }
        if (start == size) return (0, 0, false);
        uint256 end = start;
        while (types[end] != ")") ++end;
        ++end;
        bytes memory encoded = new bytes(size);
        assembly ("memory-safe") {
            let to := add(encoded, 0x20)
            let from := add(types, 0x20)
            mcopy(to, add(from, start), sub(end, start))
            mcopy(add(to, sub(end, start)), from, start)
            mcopy(add(to, end), add(from, end), sub(size, end))
        }
        contentsTypeHash = keccak256(encoded);
        typedDataSignTypeHash = keccak256(
            abi.encodePacked(
                "TypedDataSign(",
                name,
                " contents,string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)",
                types
            )
        );
        ok = true;
    }

    function _startsWith(bytes memory data, uint256 at, bytes memory prefix) private pure returns (bool) {
        for (uint256 i = 0; i < prefix.length; ++i) {
            if (data[at + i] != prefix[i]) return false;
        }
        return true;
    }
}
