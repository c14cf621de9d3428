// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ISessionKeyValidatorTypes} from "./interfaces/ISessionKeyValidator.sol";

// The rule language shared by call permissions and signing permissions: how a rule is stored (RuleWord), what
// its argument type accepts (ArgType), and the checks and encoding of a granted rule (RuleEncoding).

/// @dev Most storage words the rules of one permission may take (a call permission's paymasters share them).
uint256 constant MAX_RULE_WORDS = 31;

/// @title RuleWord
/// @notice Decodes the first storage word of a rule.
/// @dev Bit ranges, least significant first:
///
///     [  0, 216)  first value, inline (sign-extended from bit 215 when SIGNED) unless WIDE
///     [216, 224)  argType to check the word against (0: none; 256-bit types are stored as 0)
///     [224, 232)  value count
///     [232, 240)  condition (0..7) | SIGNED (0x40) | WIDE (0x80); both flags exist in storage only
///     [240, 256)  offset
///
/// followed by the first value when WIDE, then values 2..n (IN_RANGE's high end, ONE_OF's other values).
library RuleWord {
    /// @dev The words compare as int256 (the argType is an intN).
    uint256 internal constant SIGNED = 0x40;
    /// @dev The first value does not fit inline and sits in the next word.
    uint256 internal constant WIDE = 0x80;
    uint256 internal constant INLINE_BITS = 216;
    uint256 internal constant INLINE_MASK = (1 << INLINE_BITS) - 1;

    function encode(uint256 offset_, uint256 flags_, uint256 valueCount_, uint256 checkedType_, uint256 inline_)
        internal
        pure
        returns (uint256)
    {
        return (offset_ << 240) | (flags_ << 232) | (valueCount_ << 224) | (checkedType_ << 216) | inline_;
    }

    function offset(uint256 word) internal pure returns (uint256) {
        return word >> 240;
    }

    /// @dev The condition byte: the comparison in the low 4 bits, with the SIGNED and WIDE flags.
    function flags(uint256 word) internal pure returns (uint256) {
        return (word >> 232) & 0xff;
    }

    function valueCount(uint256 word) internal pure returns (uint256) {
        return uint8(word >> 224);
    }

    function checkedType(uint256 word) internal pure returns (uint256) {
        return uint8(word >> 216);
    }

    /// @dev The inline first value as a full word. SIGNEXTEND(b, x) copies bit 8b+7 of x (the top bit of its
    ///      byte b, counting from the least significant byte) into every higher bit: b = 26 copies bit 215, the
    ///      inline field's sign bit, so a signed value comes back as its int256 word.
    function inlineValue(uint256 word) internal pure returns (uint256 value) {
        if (flags(word) & SIGNED != 0) {
            assembly ("memory-safe") {
                value := signextend(26, word)
            }
        } else {
            value = word & INLINE_MASK;
        }
    }

    /// @dev Whether `value` can be stored inline, in 216 bits (sign-extended when `signed`).
    function fitsInline(uint256 value, bool signed) internal pure returns (bool fits) {
        if (!signed) return value >> INLINE_BITS == 0;
        assembly ("memory-safe") {
            fits := eq(signextend(26, value), value)
        }
    }
}

/// @title ArgType
/// @notice The ABI type of a rule's argument, in one byte, and what its canonical word is.
/// @dev Bits 5-7 are the kind, bits 0-4 the number of bytes `p` the type leaves out of the 32-byte word:
///
///     kind      | types                       | code            | canonical word (what ABI coder v2 accepts)
///     0 uint    | uint256 .. uint8, address   | 0x00 + p        | the high p bytes zero (address: p = 12)
///     1 int     | int256 .. int8              | 0x20 + p        | sign-extended from bit 255 - 8p
///     2 bytes   | bytes32 .. bytes1           | 0x40 + p        | the low p bytes zero
///     3 bool    | bool                        | 0x60            | 0 or 1
///
/// p = 0 (uint256, int256, bytes32) accepts every word. Enums are uint8 in the ABI.
library ArgType {
    uint256 internal constant KIND_UINT = 0;
    uint256 internal constant KIND_INT = 1;
    uint256 internal constant KIND_BYTES = 2;
    uint256 internal constant KIND_BOOL = 3;
    uint256 internal constant BOOL = 0x60;

    function kind(uint256 argType) internal pure returns (uint256) {
        return argType >> 5;
    }

    /// @dev Bytes of the word the type leaves out (zero or sign-extension).
    function padding(uint256 argType) internal pure returns (uint256) {
        return argType & 0x1f;
    }

    /// @dev Whether `argType` is a type code (kind 0-2 with any padding, or exactly BOOL).
    function isValid(uint256 argType) internal pure returns (bool) {
        return kind(argType) < KIND_BOOL || argType == BOOL;
    }

    function isSigned(uint256 argType) internal pure returns (bool) {
        return kind(argType) == KIND_INT;
    }

    /// @dev Whether some words are not canonical for the type (every type but the 256-bit ones).
    function restricts(uint256 argType) internal pure returns (bool) {
        return padding(argType) != 0 || argType == BOOL;
    }

    /// @dev Whether `word` is the canonical ABI encoding of a value of `argType` (a valid type code).
    function isCanonical(uint256 argType, uint256 word) internal pure returns (bool ok) {
        assembly ("memory-safe") {
            let unused := shl(3, and(argType, 0x1f)) // the bits the type leaves out of the word
            switch shr(5, argType)
            case 0 { ok := iszero(shr(sub(256, unused), word)) } // uintN: the high bits zero
            case 1 { ok := eq(signextend(sub(31, shr(3, unused)), word), word) } // intN: sign-extended
            case 2 { ok := iszero(shl(sub(256, unused), word)) } // bytesN: the low bits zero
            default { ok := lt(word, 2) } // bool
        }
    }
}

/// @title RuleEncoding
/// @notice Checks a granted rule list and encodes it into the storage words {RuleWord} describes.
library RuleEncoding {
    uint256 internal constant EQUAL = 0;
    uint256 internal constant NOT_EQUAL = 5;
    uint256 internal constant IN_RANGE = 6;
    uint256 internal constant ONE_OF = 7;

    /// @dev The storage words of `rules` (the first `count` entries of `words`). Reverts `InvalidRule` on an unknown
    ///      condition or argType, the wrong number of values, a value that is not a canonical word of the argType,
    ///      IN_RANGE with low > high; `TooManyRules` past MAX_RULE_WORDS words.
    function encode(uint256 permissionIndex, ISessionKeyValidatorTypes.Rule[] memory rules)
        internal
        pure
        returns (uint256[MAX_RULE_WORDS] memory words, uint256 count)
    {
        for (uint256 r = 0; r < rules.length; ++r) {
            ISessionKeyValidatorTypes.Rule memory rule = rules[r];
            uint256 op = rule.condition;
            uint256 argType = rule.argType;
            uint256 n = rule.values.length;
            if (
                op > ONE_OF || !ArgType.isValid(argType) || (op <= NOT_EQUAL && n != 1) || (op == IN_RANGE && n != 2)
                    || (op == ONE_OF && (n == 0 || n > MAX_RULE_WORDS))
            ) revert ISessionKeyValidatorTypes.InvalidRule(permissionIndex, r);
            bool isSigned = ArgType.isSigned(argType);
            for (uint256 k = 0; k < n; ++k) {
                if (!ArgType.isCanonical(argType, rule.values[k])) {
                    revert ISessionKeyValidatorTypes.InvalidRule(permissionIndex, r);
                }
            }
            if (op == IN_RANGE) {
                bool ordered = isSigned
                    ? int256(rule.values[0]) <= int256(rule.values[1])
                    : rule.values[0] <= rule.values[1];
                if (!ordered) revert ISessionKeyValidatorTypes.InvalidRule(permissionIndex, r);
            }
            uint256 first = rule.values[0];
            bool inline_ = RuleWord.fitsInline(first, isSigned);
            uint256 needed = count + (inline_ ? 1 : 2) + n - 1;
            if (needed > MAX_RULE_WORDS) revert ISessionKeyValidatorTypes.TooManyRules(permissionIndex, needed);
            uint256 flags = op | (isSigned ? RuleWord.SIGNED : 0) | (inline_ ? 0 : RuleWord.WIDE);
            // The word's type is checked where it can change the verdict: EQUAL and ONE_OF only pass a word
            // equal to a reference value, which is canonical (checked above); 256-bit types take any word.
            bool checked = ArgType.restricts(argType) && op != EQUAL && op != ONE_OF;
            words[count++] = RuleWord.encode(
                rule.offset, flags, n, checked ? argType : 0, inline_ ? first & RuleWord.INLINE_MASK : 0
            );
            if (!inline_) words[count++] = first;
            for (uint256 k = 1; k < n; ++k) {
                words[count++] = rule.values[k];
            }
        }
    }
}
