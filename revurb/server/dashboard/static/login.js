// The login form: posts JSON to ./login; the server answers with the session cookie.
const form = document.getElementById("login-form");
const failure = document.getElementById("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  failure.hidden = true;
  const body = {
    key: document.getElementById("login-key").value.trim(),
    secret: document.getElementById("login-secret").value,
  };
  let response;
  try {
    response = await fetch("login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (error) {
    failure.textContent = `The server cannot be reached: ${error.message}`;
    failure.hidden = false;
    return;
  }
  if (response.ok) {
    window.location.assign("./");
    return;
  }
  const answer = await response.json().catch(() => ({}));
  failure.textContent = answer.error || `Login failed (${response.status})`;
  failure.hidden = false;
});
