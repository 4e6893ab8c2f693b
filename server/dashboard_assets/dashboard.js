// Sign in and out: the server accepts JSON bodies only, so the two forms post with fetch.
"use strict";

async function postJson(url, body) {
  return fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const login = document.getElementById("login-form");
  if (login) {
    login.addEventListener("submit", async (event) => {
      event.preventDefault();
      const response = await postJson(login.action, {api_key: login.elements.api_key.value});
      if (response.ok) {
        window.location.assign(login.dataset.next);
        return;
      }
      document.getElementById("login-error").textContent = response.status === 403
        ? "This key lacks the admin scope." : "Wrong API key.";
    });
  }
  const logout = document.getElementById("logout-form");
  if (logout) {
    logout.addEventListener("submit", async (event) => {
      event.preventDefault();
      await postJson(logout.action, {});
      window.location.assign(logout.dataset.next);
    });
  }
});
