// The same hot path as benchmarks/sdk.py, done with viem: the EntryPoint v0.7 userOpHash of each operation
// (getUserOperationHash, which packs the operation) and its signature by a local account (sign({hash})).
//
//   node benchmarks/sdk_viem.mjs <inputs.json> <seconds> [<warm-up CPU seconds>]
//
// inputs.json: {"entryPoint", "chainId", "privateKey", "ops": [UserOperation in JSON-RPC form]}.
// Prints one JSON line: {"viem", "ops", "seconds", "opsPerSecond", "cpuSeconds", "opsPerCpuSecond" (CPU time of the
// whole process: its GC and compiler threads count), "results": [[hash, signature], ...]} where results holds the
// hash and signature of every input operation (to check both sides agree).
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { getUserOperationHash } from 'viem/account-abstraction'
import { privateKeyToAccount } from 'viem/accounts'

const [inputPath, secondsText, warmText] = process.argv.slice(2)
const input = JSON.parse(readFileSync(inputPath, 'utf8'))
const seconds = Number(secondsText ?? '1')
const warmCpuSeconds = Number(warmText ?? '1')
const account = privateKeyToAccount(input.privateKey)
const chainId = Number(input.chainId)
const entryPointAddress = input.entryPoint

// JSON-RPC form -> viem's UserOperation (bigint quantities), outside the timed loop, as the Python side
// builds its UserOperation objects outside its timed loop.
const ops = input.ops.map((op) => ({
  sender: op.sender,
  nonce: BigInt(op.nonce),
  callData: op.callData,
  callGasLimit: BigInt(op.callGasLimit),
  verificationGasLimit: BigInt(op.verificationGasLimit),
  preVerificationGas: BigInt(op.preVerificationGas),
  maxFeePerGas: BigInt(op.maxFeePerGas),
  maxPriorityFeePerGas: BigInt(op.maxPriorityFeePerGas),
  signature: op.signature,
}))

async function signOne(userOperation) {
  const hash = getUserOperationHash({ userOperation, entryPointAddress, entryPointVersion: '0.7', chainId })
  const signature = await account.sign({ hash })
  return [hash, signature]
}

// every input once: the results the Python side compares with its own
const results = []
for (const op of ops) results.push(await signOne(op))

// warm-up until the process has spent warmCpuSeconds of CPU time (as much work as the Python side's warm-up
// whatever the machine's load: V8 compiles the hot functions meanwhile), then the timed loop over the same
// operations, round after round
const warmStart = process.cpuUsage()
for (let i = 0; ; i++) {
  await signOne(ops[i % ops.length])
  const used = process.cpuUsage(warmStart)
  if (used.user + used.system >= warmCpuSeconds * 1e6) break
}

let done = 0
const cpuStart = process.cpuUsage()
const start = performance.now()
const stopAt = start + seconds * 1000
while (performance.now() < stopAt) {
  for (let i = 0; i < 100; i++) await signOne(ops[(done + i) % ops.length])
  done += 100
}
const elapsed = (performance.now() - start) / 1000
const cpu = process.cpuUsage(cpuStart)
const cpuSeconds = (cpu.user + cpu.system) / 1e6

const require = createRequire(import.meta.url)
const version = require('viem/package.json').version
process.stdout.write(
  `${JSON.stringify({
    viem: version,
    ops: done,
    seconds: elapsed,
    opsPerSecond: done / elapsed,
    cpuSeconds,
    opsPerCpuSecond: done / cpuSeconds,
    results,
  })}\n`,
)
