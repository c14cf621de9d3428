#!/usr/bin/env node
// A `solc` command-line front for the solcjs compiler (the npm package `solc`).
//
// py-solc-x, and through it ape-solidity, drive a native `solc` binary with two kinds of calls:
// `solc --version` and `solc --standard-json [--base-path P] [--include-path P] [--allow-paths P]`
// with the Standard JSON input on stdin. This script answers both with solcjs, so that the
// project compiles on machines where no native compiler can be downloaded.
//
// solcjs runs on one core. When the input selects output for several files, the shim compiles them on
// worker threads (one per core, at most 4; KEYSCOPE_SOLC_JOBS overrides): every worker is given the whole
// input, so source ids and warnings are the same in each, but asked for the output of its own files only.
// The heaviest files (by the size of what they import) go first, one per call; the light rest in a few calls.
// The merged answer has the same contracts, bytecode and source ids as one call over everything.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { Worker, isMainThread, parentPort, workerData } = require("worker_threads");
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
  const jobs = jobCount();
  const batches = planBatches(input, jobs);
  if (batches === null) {
    process.stdout.write(solc.compile(input, { import: importResolver(roots) }));
    return;
  }
  compileInParallel(input, roots, batches, jobs).then(
    (output) => process.stdout.write(output),
    (error) => {
      process.stderr.write(`solc-shim: ${error && error.stack ? error.stack : error}\n`);
      process.exit(1);
    },
  );
}

function jobCount() {
  const asked = process.env.KEYSCOPE_SOLC_JOBS;
  if (asked !== undefined && asked !== "") {
    const jobs = Number(asked);
    if (!Number.isInteger(jobs) || jobs < 1) usage(`KEYSCOPE_SOLC_JOBS=${asked}: give a whole number of 1 or more`);
    return jobs;
  }
  const cores = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(4, cores));
}

// The import paths a source names (enough to weigh it, not to compile it: solc resolves imports itself).
function importsOf(unit, content, remappings) {
  const found = [];
  const pattern = /import\s+(?:[^"';]*?\sfrom\s+)?["']([^"']+)["']/g;
  for (let match = pattern.exec(content); match !== null; match = pattern.exec(content)) {
    let target = match[1];
    for (const mapping of remappings) {
      const [prefix, replacement] = mapping.slice(mapping.indexOf(":") + 1).split("=");
      if (replacement !== undefined && target.startsWith(prefix)) {
        target = replacement + target.slice(prefix.length);
        break;
      }
    }
    if (target.startsWith("./") || target.startsWith("../")) target = path.posix.join(path.posix.dirname(unit), target);
    found.push(path.posix.normalize(target));
  }
  return found;
}

function withoutComments(content) {
  return content.replace(/\/\/[^\n]*|\/\*[\s\S]*?\*\//g, "");
}

function isDependency(unit) {
  return unit.startsWith("@") || /(^|\/)(\.cache|node_modules|lib)\//.test(unit);
}

// Split the files whose output is asked for into batches, heaviest first; null when one call is as good.
function planBatches(inputText, jobs) {
  let input;
  try {
    input = JSON.parse(inputText);
  } catch (_) {
    return null; // let solc give its own error for input that is not JSON
  }
  const selection = (input.settings && input.settings.outputSelection) || {};
  const sources = input.sources || {};
  const files = Object.keys(selection);
  if (jobs < 2 || files.length < 2 || "*" in selection || files.some((file) => !(file in sources))) return null;
  const remappings = (input.settings && input.settings.remappings) || [];
  const text = (unit) => (typeof sources[unit].content === "string" ? withoutComments(sources[unit].content) : "");
  // A file costs what it gives to compile: nothing without a contract to deploy; otherwise the code it imports,
  // a dependency's counted at a tenth (libraries are mostly functions a contract never calls).
  const weight = (file) => {
    if (!/^\s*contract\s+\w/m.test(text(file))) return 0;
    const seen = new Set([file]);
    const queue = [file];
    let total = 0;
    while (queue.length > 0) {
      const unit = queue.pop();
      total += text(unit).length * (isDependency(unit) ? 0.1 : 1);
      for (const next of importsOf(unit, text(unit), remappings)) {
        if (next in sources && !seen.has(next)) {
          seen.add(next);
          queue.push(next);
        }
      }
    }
    return total;
  };
  // A contract that creates another (`new C`, `type(C).creationCode`) compiles C again unless C is in its call:
  // such files share a batch.
  const definedIn = new Map();
  for (const file of files) {
    for (const match of text(file).matchAll(/\bcontract\s+(\w+)/g)) definedIn.set(match[1], file);
  }
  const group = new Map(files.map((file) => [file, [file]]));
  for (const file of files) {
    for (const match of text(file).matchAll(/\bnew\s+(\w+)|\btype\s*\(\s*(\w+)\s*\)\s*\.\s*(?:creation|runtime)Code/g)) {
      const other = definedIn.get(match[1] || match[2]);
      if (other === undefined || group.get(other) === group.get(file)) continue;
      const joined = group.get(file).concat(group.get(other));
      for (const member of joined) group.set(member, joined);
    }
  }
  const groups = [...new Set(group.values())]
    .map((members) => ({ members, weight: members.reduce((sum, member) => sum + weight(member), 0) }))
    .sort((a, b) => b.weight - a.weight);
  const total = groups.reduce((sum, entry) => sum + entry.weight, 0);
  const batches = [];
  const rest = [];
  for (const entry of groups) {
    if (entry.weight * 4 * jobs >= total) batches.push(entry.members);
    else rest.push(entry.members);
  }
  const restBatches = Math.min(rest.length, 4 * jobs);
  for (let index = 0; index < restBatches; index++) {
    batches.push(rest.filter((_, at) => at % restBatches === index).flat());
  }
  return batches.length < 2 ? null : batches;
}

function compileBatch(inputText, roots, files) {
  const input = JSON.parse(inputText);
  const selection = {};
  for (const file of files) selection[file] = input.settings.outputSelection[file];
  input.settings.outputSelection = selection;
  return solc.compile(JSON.stringify(input), { import: importResolver(roots) });
}

function compileInParallel(inputText, roots, batches, jobs) {
  const queue = batches.slice();
  const outputs = [];
  const workers = Math.min(jobs, batches.length);
  const run = () =>
    new Promise((resolve, reject) => {
      const worker = new Worker(__filename, { workerData: { input: inputText, roots } });
      const next = () => {
        const files = queue.shift();
        if (files === undefined) {
          worker.terminate().then(() => resolve(), reject);
          return;
        }
        worker.postMessage(files);
      };
      worker.on("message", (output) => {
        outputs.push(JSON.parse(output));
        next();
      });
      worker.on("error", reject);
      worker.on("exit", (code) => {
        if (queue.length > 0 && code !== 0) reject(new Error(`a compiler worker stopped with code ${code}`));
      });
      next();
    });
  return Promise.all(Array.from({ length: workers }, run)).then(() => JSON.stringify(mergeOutputs(outputs)));
}

// One answer from the batches' answers: each batch holds its own files' contracts; sources and warnings are
// the same in every batch (each analysed the whole input), so they are kept once.
function mergeOutputs(outputs) {
  const merged = { contracts: {}, sources: {}, errors: [] };
  const seenErrors = new Set();
  for (const output of outputs) {
    for (const [file, contracts] of Object.entries(output.contracts || {})) {
      merged.contracts[file] = Object.assign(merged.contracts[file] || {}, contracts);
    }
    for (const [file, source] of Object.entries(output.sources || {})) {
      if (!(file in merged.sources) || (source.ast && !merged.sources[file].ast)) merged.sources[file] = source;
    }
    for (const error of output.errors || []) {
      const key = JSON.stringify([error.severity, error.formattedMessage || error.message, error.sourceLocation]);
      if (!seenErrors.has(key)) {
        seenErrors.add(key);
        merged.errors.push(error);
      }
    }
  }
  if (merged.errors.length === 0) delete merged.errors;
  return merged;
}

if (isMainThread) {
  main();
} else {
  parentPort.on("message", (files) => {
    parentPort.postMessage(compileBatch(workerData.input, workerData.roots, files));
  });
}
