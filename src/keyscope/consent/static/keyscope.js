// keyscope's owner pages: shared helpers. Every string from the server is put in the page as text
// (createTextNode), never as markup: grants carry attacker-influenced text (function names, token symbols).
"use strict";

const keyscope = (() => {
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "class") node.className = value;
      else if (name.startsWith("data-")) node.setAttribute(name, String(value));
      else if (name === "title") node.title = String(value);
      else throw new Error("unexpected attribute " + name);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  async function api(method, path, body) {
    const options = { method, headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    const answer = await response.json().catch(() => ({ error: "the server answered " + response.status }));
    if (!response.ok) throw new Error(answer.error || "the server answered " + response.status);
    return answer;
  }

  // the account a request naming none is described with (a wallet's own account is known once it connects)
  const NO_ACCOUNT = "0x0000000000000000000000000000000000000000";

  // EIP-6963 wallets announce themselves; otherwise the EIP-1193 provider at window.ethereum.
  const announced = [];
  window.addEventListener("eip6963:announceProvider", (event) => {
    if (event.detail && event.detail.provider) announced.push(event.detail.provider);
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));

  function provider() {
    const found = announced[0] || window.ethereum;
    if (!found || typeof found.request !== "function") {
      throw new Error("no browser wallet found: install or unlock one (any EIP-1193 wallet), then reload");
    }
    return found;
  }

  async function connect() {
    const wallet = provider();
    const accounts = await wallet.request({ method: "eth_requestAccounts" });
    if (!accounts || !accounts.length) throw new Error("the wallet shared no account");
    const chainId = parseInt(await wallet.request({ method: "eth_chainId" }), 16);
    return { wallet, address: accounts[0], chainId };
  }

  function localTime(seconds) {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    return new Date(seconds * 1000).toLocaleString() + " (" + zone + ")";
  }

  function duration(seconds) {
    if (seconds <= 0) return "no time";
    const days = Math.floor(seconds / 86400), hours = Math.floor((seconds % 86400) / 3600);
    const minutes = Math.floor((seconds % 3600) / 60), rest = seconds % 60;
    if (days) return days + " d " + hours + " h";
    if (hours) return hours + " h " + minutes + " min";
    if (minutes) return minutes + " min " + rest + " s";
    return rest + " s";
  }

  function windowText(after, until, utc) {
    // a time past what a Date holds (the year 275760) has no local form: the server's UTC words say it
    if (Number.isNaN(new Date(after * 1000).getTime()) || Number.isNaN(new Date(until * 1000).getTime())) {
      return utc || "Valid until a time past the year 275760: in effect it never expires";
    }
    const start = after ? "from " + localTime(after) : "from now";
    const end = until ? "until " + localTime(until) : "with no end: it never expires";
    return "Valid " + start + ", " + end;
  }

  function warnings(list) {
    if (!list.length) return null;
    return el("ul", { class: "warnings" }, ...list.map((w) =>
      el("li", { class: "warning " + w.level, "data-level": w.level },
        el("strong", {}, w.level === "danger" ? "Danger: " : "Caution: "), w.text)));
  }

  function permission(p) {
    return el("li", { class: "permission", "data-index": p.index },
      el("p", { class: "call" }, "May call ", el("code", { class: "function" }, p.function)),
      el("p", { class: "contract" }, "on ", el("code", { class: "address" }, p.contract), " (", p.contract_label, ")"),
      el("ul", { class: "rules" }, ...p.rules.map((rule) => el("li", { class: "rule" }, rule))),
      el("p", { class: "value" }, p.value));
  }

  function description(d) {
    return el("div", { class: "description" },
      warnings(d.warnings),
      el("dl", { class: "facts" },
        el("dt", {}, "Account"), el("dd", {},
          // a request naming no account is described with the zero address standing for it: not an address to show
          d.account === NO_ACCOUNT ? "not named by the request" : el("code", { class: "address" }, d.account),
          d.account_note),
        el("dt", {}, "Chain"), el("dd", {}, String(d.chain_id)),
        el("dt", {}, "Session key"), el("dd", {}, el("code", { class: "address" }, d.session_key)),
        el("dt", {}, "When"), el("dd", { class: "window" }, windowText(d.valid_after, d.valid_until, d.window)),
        el("dt", {}, "Gas"), el("dd", { class: "gas" }, d.gas),
        el("dt", {}, "Limits"), el("dd", { class: "limits" }, d.limits.join("; ")),
        el("dt", {}, "Signing"), el("dd", { class: "signing" },
          el("ul", {}, ...d.signing.map((line) => el("li", { class: "signing-permission" }, line)))),
        d.paymasters.length ? el("dt", {}, "Paymasters") : null,
        d.paymasters.length ? el("dd", { class: "paymasters" },
          "Operations paid through these are not capped: ", d.paymasters.join(", ")) : null,
        el("dt", {}, "Co-signer"), el("dd", { class: "cosigner" }, d.cosigner || "none: the session key signs alone")),
      el("h2", {}, d.permissions.length === 1 ? "What the key may do" : "What the key may do (" + d.permissions.length + " permissions)"),
      el("ul", { class: "permissions" }, ...d.permissions.map(permission)));
  }

  function status(text, kind) {
    const node = document.getElementById("status");
    node.textContent = text;
    node.className = kind || "";
  }

  return { el, api, connect, localTime, duration, windowText, description, status };
})();
