// Preloaded with `node -r` in front of the Alto bundler by keyscope's local stack.
//
// Alto always asks to listen on 0.0.0.0. This script rewrites the host of every TCP listen() in the
// process to 127.0.0.1 (or $KEYSCOPE_LISTEN_HOST), so that the bundler is reachable from this machine
// only. Once a server listens, it prints one line to stderr that the stack waits for:
//
//     keyscope-listen: 127.0.0.1:<port>
//
// It also exits the bundler when the process that started it goes away, so that no bundler outlives
// its stack even when the Python process is killed without a chance to clean up.
"use strict";

const net = require("net");

const HOST = process.env.KEYSCOPE_LISTEN_HOST || "127.0.0.1";
const originalListen = net.Server.prototype.listen;

function isPort(value) {
  return typeof value === "number" || (typeof value === "string" && /^[0-9]+$/.test(value));
}

function localArguments(args) {
  if (args.length === 0 || typeof args[0] === "function") {
    // listen([callback]): an ephemeral port on every interface.
    return [{ port: 0, host: HOST }, ...args];
  }
  const first = args[0];
  if (isPort(first)) {
    // listen(port[, host][, backlog][, callback])
    const rest = args.slice(1);
    if (typeof rest[0] === "string") {
      rest[0] = HOST;
    } else {
      rest.unshift(HOST);
    }
    return [first, ...rest];
  }
  if (first !== null && typeof first === "object" && !first._handle && first.fd === undefined && !first.path) {
    // listen(options[, callback]) with a TCP port.
    return [{ ...first, host: HOST }, ...args.slice(1)];
  }
  // A unix socket path, a handle or a file descriptor: not a TCP host to rewrite.
  return args;
}

net.Server.prototype.listen = function keyscopeListen(...args) {
  this.once("listening", () => {
    const address = this.address();
    if (address !== null && typeof address === "object") {
      process.stderr.write(`keyscope-listen: ${address.address}:${address.port}\n`);
    }
  });
  return originalListen.apply(this, localArguments(args));
};

const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) {
    process.kill(process.pid, "SIGTERM");
  }
}, 1000).unref();
