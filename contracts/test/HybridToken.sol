// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title HybridToken
/// @notice Test-only token in the shape of the hybrid ERC-20/ERC-721 designs: 18 decimals, one collection token per
///         whole token held, and `approve`/`transferFrom` that read their number as a token id when it is one that
///         was minted (an approval of that one token, which adds to the others) and as an amount otherwise. It says
///         nothing through ERC-165.
contract HybridToken {
    uint8 public constant decimals = 18;
    string public constant symbol = "HYB";
    string public constant name = "Hybrid";
    uint256 private constant UNIT = 10 ** 18;

    uint256 public minted;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    mapping(uint256 => address) public ownerOf;
    mapping(uint256 => address) public getApproved;

    /// @notice Give `to` `count` whole tokens, each with a collection token of the next id.
    function mint(address to, uint256 count) external {
        for (uint256 i = 0; i < count; ++i) {
            ownerOf[++minted] = to;
        }
        balanceOf[to] += count * UNIT;
    }

    /// @notice An approval of the token `amountOrId` names when it is a minted id, else an allowance of that amount.
    function approve(address spender, uint256 amountOrId) external returns (bool) {
        if (amountOrId != 0 && amountOrId <= minted) {
            require(ownerOf[amountOrId] == msg.sender, "not owner");
            getApproved[amountOrId] = spender;
        } else {
            allowance[msg.sender][spender] = amountOrId;
        }
        return true;
    }

    /// @notice A move of the token `amountOrId` names (and its whole token) when it is a minted id, else of an amount.
    function transferFrom(address from, address to, uint256 amountOrId) external returns (bool) {
        if (amountOrId != 0 && amountOrId <= minted) {
            require(ownerOf[amountOrId] == from, "not owner");
            require(msg.sender == from || getApproved[amountOrId] == msg.sender, "not approved");
            delete getApproved[amountOrId];
            ownerOf[amountOrId] = to;
            _move(from, to, UNIT);
        } else {
            if (msg.sender != from) {
                allowance[from][msg.sender] -= amountOrId;
            }
            _move(from, to, amountOrId);
        }
        return true;
    }

    /// @notice A move of an amount of the caller's.
    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) private {
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
    }
}
