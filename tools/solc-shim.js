#!/usr/bin/env node
// A `solc` command-line front for the solcjs compiler (the npm package `solc`).
//
// py-solc-x, and through it ape-solidity, drive a native `solc` binary with two kinds of calls:
// `solc --version` and `solc --standard-json [--base-path P] [--include-path P] [--allow-paths P]`
// with the Standard JSON input on stdin. This script answers both with solcjs, so that the
// project compiles on machines where no native compiler can be downloaded.
"use strict";

const fs = require("fs");
const path = require("path");
const solc = require("solc");

function usage(message) {
  process.stderr.write(`solc-shim: ${message}\n`);
  process.stderr.write("supported: --version | --standard-json [--base-path P] [--include-path P] [--allow-paths P]\n");
  process.exit(2);
}

function parseArgs(argv) {
  const options = { version: false, standardJson: false, basePath: null, includePaths: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const takeValue = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === "--version") options.version = true;
    else if (arg === "--standard-json") options.standardJson = true;
    else if (arg === "--base-path") options.basePath = takeValue();
    else if (arg === "--include-path") options.includePaths.push(takeValue());
    else if (arg === "--allow-paths") takeValue(); // solcjs reads only what the callback returns
    else if (arg === "-") continue;
    else usage(`unsupported argument ${arg}`);
  }
  return options;
}

function importResolver(roots) {
  return (importPath) => {
    const candidates = path.isAbsolute(importPath) ? [importPath] : roots.map((root) => path.join(root, importPath));
    for (const candidate of candidates) {
      try {
        return { contents: fs.readFileSync(candidate, "utf8") };
      } catch (_) {
        // try the next root
      }
    }
    return { error: `File not found: ${importPath} (looked under ${roots.join(", ")})` };
  };
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.version) {
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return;
  }
  if (!options.standardJson) usage("nothing to do");
  const input = fs.readFileSync(0, "utf8");
  const roots = [options.basePath || process.cwd(), ...options.includePaths];
  process.stdout.write(solc.compile(input, { import: importResolver(roots) }));
}

main();
