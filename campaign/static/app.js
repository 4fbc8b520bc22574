// campaign's own script: loaded from /static with a CSP nonce; no inline handlers anywhere.
document.addEventListener("DOMContentLoaded", () => {
  const token = document.getElementById("new-token");
  if (token) {
    token.setAttribute("tabindex", "0");
    token.focus();
  }
  // "Copy text" buttons stay hidden unless this browser can copy to the clipboard.
  if (navigator.clipboard && window.isSecureContext) {
    document.querySelectorAll("button[data-copy-from]").forEach((button) => {
      const source = document.getElementById(button.dataset.copyFrom);
      const status = document.getElementById(button.dataset.copyStatus);
      if (!source) return;
      button.hidden = false;
      button.addEventListener("click", () => {
        const say = (text) => { if (status) status.textContent = text; };
        navigator.clipboard.writeText(source.value).then(
          () => say(button.dataset.copied || "Copied. Paste it into the post on the account."),
          () => say("Could not copy: select the text above and copy it yourself."),
        );
      });
    });
  }
});
