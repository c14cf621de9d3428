"""The `solc` command behind ape (tools/solc-shim.js) compiles several files on worker threads; its answer must be
the answer of one call over everything, byte for byte: the same contracts, bytecode, source ids and warnings.
A contract that creates another is compiled with it; a compile error in one file is reported as solc reports it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIM = ROOT / "tools" / "solc-shim.js"

SOURCES = {
    "src/Made.sol": """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;
/// @notice created by Maker
contract Made {
    uint256 public value;
    constructor(uint256 value_) { value = value_; }
    function twice() external view returns (uint256) { return value * 2; }
}
""",
    "src/Maker.sol": """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;
import {Made} from "./Made.sol";
contract Maker {
    event Built(address made);
    function build(uint256 value) external returns (Made made) {
        made = new Made(value);
        emit Built(address(made));
    }
    function code() external pure returns (bytes memory) { return type(Made).creationCode; }
}
""",
    "src/Lib.sol": """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;
library Lib {
    function add(uint256 a, uint256 b) internal pure returns (uint256) { return a + b; }
}
""",
    "src/Counter.sol": """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;
import {Lib} from "./Lib.sol";
contract Counter {
    uint256 public count;
    function bump(uint256 by) external { count = Lib.add(count, by); }
    function unused(uint256 x) external pure returns (uint256) { uint256 y; return x; }
}
""",
    "src/Token.sol": """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;
contract Token {
    mapping(address => uint256) public balanceOf;
    function mint(address to, uint256 amount) external { balanceOf[to] += amount; }
}
""",
}

SELECTED = ["abi", "evm.bytecode.object", "evm.bytecode.sourceMap", "evm.deployedBytecode.object", "devdoc"]


def standard_input(sources: dict[str, str]) -> str:
    return json.dumps(
        {
            "language": "Solidity",
            "sources": {name: {"content": text} for name, text in sources.items()},
            "settings": {
                "optimizer": {"enabled": True, "runs": 200},
                "viaIR": True,
                "evmVersion": "cancun",
                "outputSelection": {name: {"*": SELECTED, "": ["ast"]} for name in sources},
            },
        }
    )


def run_shim(jobs: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(SHIM), "--standard-json"],
        input=text,
        capture_output=True,
        text=True,
        env={**os.environ, "KEYSCOPE_SOLC_JOBS": jobs},
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def compile_with(jobs: int, text: str) -> dict:
    done = run_shim(str(jobs), text)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def errors_of(output: dict) -> list[str]:
    return sorted(json.dumps(error, sort_keys=True) for error in output.get("errors", []))


@pytest.mark.parametrize("jobs", [2, 3])
def test_the_answer_on_worker_threads_is_the_answer_of_one_call(jobs: int) -> None:
    text = standard_input(SOURCES)
    one = compile_with(1, text)
    many = compile_with(jobs, text)

    assert set(one["contracts"]) == set(SOURCES)
    assert one["contracts"] == many["contracts"]
    assert one["sources"] == many["sources"]
    assert errors_of(one) == errors_of(many)
    assert any("Unused local variable" in error for error in errors_of(one)), errors_of(
        one
    )  # warnings kept once
    assert len(errors_of(many)) == len(many.get("errors", []))
    made = one["contracts"]["src/Made.sol"]["Made"]["evm"]["bytecode"]["object"]
    assert made and made[-40:] in one["contracts"]["src/Maker.sol"]["Maker"]["evm"]["bytecode"]["object"]


def test_a_compile_error_in_one_file_is_reported_as_one_call_reports_it() -> None:
    broken = {**SOURCES, "src/Token.sol": SOURCES["src/Token.sol"].replace("+= amount;", "+= amount")}
    text = standard_input(broken)
    one = compile_with(1, text)
    many = compile_with(2, text)

    assert [error["severity"] for error in one["errors"]] == ["error"]
    assert errors_of(one) == errors_of(many)
    assert "contracts" not in many or not many["contracts"].get("src/Token.sol")


def test_an_unusable_job_count_is_refused_with_what_to_give() -> None:
    done = run_shim("two", standard_input(SOURCES))
    assert done.returncode == 2
    assert "KEYSCOPE_SOLC_JOBS=two: give a whole number of 1 or more" in done.stderr
