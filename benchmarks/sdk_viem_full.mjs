// The full path of benchmarks/sdk.py, done with viem: from a call (target, function, arguments) to the signed
// UserOperation, with everything a chain or a bundler would answer (nonce, fees, gas limits) served from
// memory. Two ways a viem dapp writes it:
//
// * "viem": by hand: encodeFunctionData of the call, the ERC-7579 single execution (encodePacked) inside
//   encodeFunctionData of execute(mode, executionCalldata), the operation object with the cached figures,
//   getUserOperationHash (v0.7) and the session key's sign({hash}). The least work viem can do.
// * "viem_account": viem's account-abstraction API: a toSmartAccount implementation for the account
//   (encodeCalls, getNonce, getStubSignature, signUserOperation), prepareUserOperation on a bundler client
//   whose transport answers from memory (gas limits and fees given, as from a warm cache), then
//   signUserOperation.
//
//   node benchmarks/sdk_viem_full.mjs <inputs.json> <seconds> [<warm-up CPU seconds>]
//
// inputs.json: {"entryPoint", "chainId", "privateKey", "sender", "target", "recipient", "nonceKey", "nonces",
// "gas": {callGasLimit, verificationGasLimit, preVerificationGas, maxFeePerGas, maxPriorityFeePerGas}}.
// Prints one JSON line: {"viem", "variants": {name: {"ops", "seconds", "opsPerSecond", "cpuSeconds",
// "opsPerCpuSecond"}} (CPU time of the whole process: its GC and compiler threads count),
// "results": {name: [[callData, hash, signature], ...]}} (results: one per nonce, to check against Python).
// Each variant's timed work ends with the signed operation, as the Python side's does: the hash the results
// show is computed again for the check, outside the timed loop.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createClient, custom, encodeFunctionData, encodePacked, parseAbi } from 'viem'
import {
  createBundlerClient,
  entryPoint07Abi,
  getUserOperationHash,
  toSmartAccount,
} from 'viem/account-abstraction'
import { privateKeyToAccount } from 'viem/accounts'

const [inputPath, secondsText, warmText] = process.argv.slice(2)
const input = JSON.parse(readFileSync(inputPath, 'utf8'))
const seconds = Number(secondsText ?? '1')
const warmCpuSeconds = Number(warmText ?? '1')
const key = privateKeyToAccount(input.privateKey)
const chainId = Number(input.chainId)
const entryPointAddress = input.entryPoint
const nonceKey = BigInt(input.nonceKey)
const nonces = input.nonces
const gas = Object.fromEntries(Object.entries(input.gas).map(([name, value]) => [name, BigInt(value)]))

const nftAbi = parseAbi(['function safeMint(address to)'])
const accountAbi = parseAbi(['function execute(bytes32 mode, bytes executionCalldata)'])
const MODE_SINGLE = `0x${'00'.repeat(32)}`
const STUB = `0x${'ff'.repeat(32)}${'7f'.repeat(32)}1c`

function executeCallData(to, value, data) {
  return encodeFunctionData({
    abi: accountAbi,
    functionName: 'execute',
    args: [MODE_SINGLE, encodePacked(['address', 'uint256', 'bytes'], [to, value, data])],
  })
}

// -- by hand ------------------------------------------------------------------------------------------------
async function byHand(i) {
  const data = encodeFunctionData({ abi: nftAbi, functionName: 'safeMint', args: [input.recipient] })
  const userOperation = {
    sender: input.sender,
    nonce: (nonceKey << 64n) | BigInt(nonces[i]),
    callData: executeCallData(input.target, 0n, data),
    ...gas,
    signature: '0x',
  }
  const hash = getUserOperationHash({ userOperation, entryPointAddress, entryPointVersion: '0.7', chainId })
  userOperation.signature = await key.sign({ hash })
  return userOperation
}

// -- viem's account-abstraction API, transport answering from memory -----------------------------------------
const memory = custom({
  async request({ method }) {
    if (method === 'eth_chainId') return `0x${chainId.toString(16)}`
    if (method === 'eth_getCode') return '0x01' // the account is deployed (asked once, then remembered)
    throw new Error(`unexpected request ${method}: the full path must not need the network`)
  },
})
const client = createClient({ chain: { id: chainId }, transport: memory })
const bundlerClient = createBundlerClient({ client, transport: memory })
let nextNonce = 0
const account = await toSmartAccount({
  client,
  entryPoint: { abi: entryPoint07Abi, address: entryPointAddress, version: '0.7' },
  async encodeCalls(calls) {
    if (calls.length !== 1) throw new Error('one call')
    return executeCallData(calls[0].to, calls[0].value ?? 0n, calls[0].data ?? '0x')
  },
  async getAddress() {
    return input.sender
  },
  async getFactoryArgs() {
    return { factory: undefined, factoryData: undefined }
  },
  async getNonce() {
    return (nonceKey << 64n) | BigInt(nonces[nextNonce])
  },
  async getStubSignature() {
    return STUB
  },
  async signMessage() {
    throw new Error('not used')
  },
  async signTypedData() {
    throw new Error('not used')
  },
  async signUserOperation(userOperation) {
    const hash = getUserOperationHash({
      userOperation: { ...userOperation, sender: input.sender },
      entryPointAddress,
      entryPointVersion: '0.7',
      chainId,
    })
    return key.sign({ hash })
  },
})

async function throughAccount(i) {
  nextNonce = i
  const userOperation = await bundlerClient.prepareUserOperation({
    account,
    calls: [{ to: input.target, abi: nftAbi, functionName: 'safeMint', args: [input.recipient] }],
    ...gas,
  })
  userOperation.signature = await account.signUserOperation(userOperation)
  return userOperation
}

// what a variant built, for the check against the Python side (not timed)
function checked(userOperation) {
  // the operation as the variant built it (its own sender field): a field that differs from the Python side's
  // changes this hash
  const hash = getUserOperationHash({ userOperation, entryPointAddress, entryPointVersion: '0.7', chainId })
  return [userOperation.callData, hash, userOperation.signature]
}

async function timed(work) {
  // warm-up until the process has spent warmCpuSeconds of CPU time in it (as much work as the Python side's
  // warm-up whatever the machine's load: V8 compiles the hot functions meanwhile)
  const warmStart = process.cpuUsage()
  for (let i = 0; ; i++) {
    await work(i % nonces.length)
    const used = process.cpuUsage(warmStart)
    if (used.user + used.system >= warmCpuSeconds * 1e6) break
  }
  let done = 0
  const cpuStart = process.cpuUsage()
  const start = performance.now()
  const stopAt = start + seconds * 1000
  while (performance.now() < stopAt) {
    for (let i = 0; i < 100; i++) await work((done + i) % nonces.length)
    done += 100
  }
  const elapsed = (performance.now() - start) / 1000
  const cpu = process.cpuUsage(cpuStart)
  const cpuSeconds = (cpu.user + cpu.system) / 1e6
  return { ops: done, seconds: elapsed, opsPerSecond: done / elapsed, cpuSeconds, opsPerCpuSecond: done / cpuSeconds }
}

const variants = { viem: byHand, viem_account: throughAccount }
const results = {}
const rates = {}
for (const [name, work] of Object.entries(variants)) {
  results[name] = []
  for (let i = 0; i < nonces.length; i++) results[name].push(checked(await work(i)))
  rates[name] = await timed(work)
}

const require = createRequire(import.meta.url)
const version = require('viem/package.json').version
process.stdout.write(`${JSON.stringify({ viem: version, variants: rates, results })}\n`)
