// The consent page: the grant in words, then the owner's wallet signs it (eth_signTypedData_v4) and the dapp's
// backend checks the signature.
"use strict";

(() => {
  const id = location.pathname.split("/").pop();
  const approve = document.getElementById("approve");
  const decline = document.getElementById("decline");
  const grant = document.getElementById("grant");

  function finished(state, text) {
    approve.disabled = decline.disabled = true;
    document.body.dataset.state = state;
    keyscope.status(text, state);
  }

  async function load() {
    const answer = await keyscope.api("GET", "/api/consent/" + id);
    grant.replaceChildren(keyscope.description(answer.description));
    if (answer.owner) {
      grant.prepend(keyscope.el("p", { class: "muted" }, "Sign with the owner's wallet: ",
        keyscope.el("code", { class: "address" }, answer.owner)));
    }
    if (answer.state === "waiting") {
      approve.disabled = decline.disabled = false;
      document.body.dataset.state = "waiting";
    } else {
      finished(answer.state, "This request is already " + answer.state + ".");
    }
  }

  approve.addEventListener("click", async () => {
    approve.disabled = decline.disabled = true;
    try {
      keyscope.status("Connecting your wallet…");
      const { wallet, address, chainId } = await keyscope.connect();
      const ready = await keyscope.api("POST", "/api/consent/" + id + "/connect", { address, chainId });
      keyscope.status("Sign the session in your wallet…");
      const signature = await wallet.request({
        method: "eth_signTypedData_v4",
        params: [address, JSON.stringify(ready.typedData)],
      });
      const done = await keyscope.api("POST", "/api/consent/" + id + "/signature", { signature });
      finished("granted", "Granted: session " + done.sessionId + " of " + done.account + ". You can close this page.");
    } catch (error) {
      approve.disabled = decline.disabled = false;
      keyscope.status("Not granted: " + (error && error.message ? error.message : String(error)), "error");
    }
  });

  decline.addEventListener("click", async () => {
    try {
      await keyscope.api("POST", "/api/consent/" + id + "/decline", {});
      finished("declined", "Declined: the dapp gets no session.");
    } catch (error) {
      keyscope.status(error.message, "error");
    }
  });

  load().catch((error) => {
    grant.replaceChildren(keyscope.el("p", { class: "error" }, error.message));
  });
})();
