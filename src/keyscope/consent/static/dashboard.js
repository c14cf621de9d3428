// The sessions dashboard: every session of the account with its state, permissions in words and time left;
// the owner revokes one or all, as a UserOperation whose hash the wallet signs (personal_sign).
"use strict";

(() => {
  const account = location.pathname.split("/").pop();
  const list = document.getElementById("sessions");
  const revokeAll = document.getElementById("revoke-all");
  let clock = { chain: 0, loaded: 0 };
  const LIVE = new Set(["active", "not yet enabled", "not yet valid"]);
  // an expired session keeps its permission slots until it is revoked (a new grant of the same key and call waits
  // for that), so its card can revoke it too
  const REVOCABLE = new Set([...LIVE, "expired"]);

  function now() {
    return clock.chain + Math.floor((Date.now() - clock.loaded) / 1000);
  }

  // a revoked or invalidated session has no time left, whatever its window says (as `keyscope sessions` shows it)
  const DEAD = new Set(["revoked", "invalidated"]);

  function timeLeft(status, until) {
    if (DEAD.has(status)) return "none: " + status;
    if (!until) return "never expires";
    const left = until - now();
    return left > 0 ? keyscope.duration(left) + " left" : "expired";
  }

  function card(session) {
    const d = session.description;
    const button = keyscope.el("button", { class: "danger revoke", "data-session": session.session_id }, "Revoke");
    button.type = "button";
    button.disabled = !REVOCABLE.has(session.status);
    button.addEventListener("click", () => revoke({ sessionIds: [session.session_id] }));
    const left = keyscope.el("span", { class: "time-left", "data-until": session.valid_until, "data-status": session.status },
      timeLeft(session.status, session.valid_until));
    return keyscope.el("li", { class: "session", "data-session": session.session_id, "data-status": session.status },
      keyscope.el("div", { class: "session-head" },
        keyscope.el("span", { class: "state state-" + session.status.replace(/ /g, "-") }, session.status),
        left, button),
      keyscope.el("p", {}, "Session ", keyscope.el("code", { class: "address" }, session.session_id)),
      keyscope.el("p", {}, "Key ", keyscope.el("code", { class: "address" }, session.session_key)),
      keyscope.el("p", { class: "window" }, keyscope.windowText(session.valid_after, session.valid_until)),
      session.usage.length ? keyscope.el("p", { class: "usage-head" }, "Used so far:") : null,
      session.usage.length ? keyscope.el("ul", { class: "usage" }, ...session.usage.map((u) => keyscope.el("li", {}, u))) : null,
      d ? keyscope.description(d)
        : keyscope.el("p", { class: "muted" }, "Its permissions are not known here: it was granted elsewhere (only its key and window are on chain)."));
  }

  async function load() {
    const answer = await keyscope.api("GET", "/api/accounts/" + account + "/sessions");
    clock = { chain: answer.now, loaded: Date.now() };
    document.getElementById("account").replaceChildren("Account ",
      keyscope.el("code", { class: "address" }, answer.account), " on chain " + answer.chainId);
    // a grant the store cannot read may be one of this account's, not used yet (so not on chain either): say so,
    // and leave "revoke every session" open, which ends the account's among them too
    const unreadable = answer.unreadable || [];
    revokeAll.disabled = !answer.sessions.some((s) => REVOCABLE.has(s.status)) && !unreadable.length;
    list.replaceChildren(
      unreadable.length
        ? keyscope.el("p", { class: "error unreadable" }, unreadable.length + " grant(s) in the session store could not " +
          "be read, and may be sessions of this account not listed here: " + unreadable.join(", ") +
          ". \"Revoke every session\" ends this account's among them too; ask the store's operator to restore or delete " +
          "them.")
        : "",
      answer.sessions.length
        ? keyscope.el("ul", { class: "sessions" }, ...answer.sessions.map(card))
        : keyscope.el("p", { class: "muted" }, "This account has no sessions."));
    document.body.dataset.loaded = String(Date.now());
  }

  async function revoke(what) {
    try {
      keyscope.status("Connecting your wallet…");
      const { wallet, address } = await keyscope.connect();
      const prepared = await keyscope.api("POST", "/api/accounts/" + account + "/revoke", what);
      keyscope.status("Sign in your wallet: " + prepared.what + " (operation " + prepared.userOpHash + ")");
      const signature = await wallet.request({ method: "personal_sign", params: [prepared.userOpHash, address] });
      keyscope.status("Sending…");
      const done = await keyscope.api("POST", "/api/operations/" + prepared.operationId + "/signature",
        { signature, from: address });
      keyscope.status((done.success ? "Done: " : "The operation failed: ") + done.what + " (transaction " + done.transactionHash + ")",
        done.success ? "granted" : "error");
      await load();
    } catch (error) {
      keyscope.status("Not revoked: " + (error && error.message ? error.message : String(error)), "error");
    }
  }

  revokeAll.addEventListener("click", () => revoke({ all: true }));
  document.getElementById("refresh").addEventListener("click", () => load().catch((e) => keyscope.status(e.message, "error")));
  setInterval(() => {
    for (const node of document.querySelectorAll(".time-left")) {
      node.textContent = timeLeft(node.dataset.status, Number(node.dataset.until));
    }
  }, 1000);
  load().catch((error) => list.replaceChildren(keyscope.el("p", { class: "error" }, error.message)));
})();
