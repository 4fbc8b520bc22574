// campaign's own script: loaded from /static with a CSP nonce; no inline handlers anywhere.
document.addEventListener("DOMContentLoaded", () => {
  const token = document.getElementById("new-token");
  if (token) {
    token.setAttribute("tabindex", "0");
    token.focus();
  }
});
