// Castellan's passkey ceremonies (W3C WebAuthn). The only script on our pages: it runs the
// ceremony in the browser and hands the answer back through an ordinary form, so everything
// else on the page works without it. Served from our origin under the strict CSP
// (script-src 'self'); no third party, no inline script.
//
// A form with `data-passkey="register" | "sign-in" | "second-factor"` and `data-options`
// (the path that begins the ceremony) is shown only where WebAuthn exists. On submit its
// options are fetched (POST, with the form's CSRF token), the browser asks the authenticator,
// and the answer goes into the form's hidden `credential` field before the form is sent.
"use strict";
(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  function fromB64url(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) {
      b64 += "=";
    }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function toB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeList(list) {
    return (list || []).map(function (c) {
      var copy = Object.assign({}, c);
      copy.id = fromB64url(c.id);
      return copy;
    });
  }

  function creationOptions(json) {
    var pk = Object.assign({}, json.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: fromB64url(pk.user.id) });
    pk.excludeCredentials = decodeList(pk.excludeCredentials);
    return { publicKey: pk };
  }

  function requestOptions(json) {
    var pk = Object.assign({}, json.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.allowCredentials = decodeList(pk.allowCredentials);
    return { publicKey: pk };
  }

  function encode(cred) {
    var r = cred.response;
    var response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      if (r.getTransports) {
        response.transports = r.getTransports();
      }
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      response.userHandle = r.userHandle ? toB64url(r.userHandle) : null;
    }
    return JSON.stringify({
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: response,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    });
  }

  function fetchOptions(form) {
    var body = new URLSearchParams();
    body.set("csrf_token", form.elements.csrf_token.value);
    return fetch(form.dataset.options, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString(),
    }).then(function (res) {
      if (!res.ok) {
        throw new Error("options " + res.status);
      }
      return res.json();
    });
  }

  function showError(form, text) {
    var el = form.querySelector("[data-passkey-error]");
    if (el) {
      el.textContent = text;
      el.hidden = false;
    }
  }

  function finish(form, cred) {
    form.elements.credential.value = encode(cred);
    form.submit();
  }

  var pendingAutofill = null;

  function run(form, mediation) {
    var kind = form.dataset.passkey;
    return fetchOptions(form).then(function (json) {
      if (kind === "register") {
        return navigator.credentials.create(creationOptions(json));
      }
      var opts = requestOptions(json);
      if (mediation === "conditional") {
        pendingAutofill = new AbortController();
        opts.mediation = "conditional";
        opts.signal = pendingAutofill.signal;
      }
      return navigator.credentials.get(opts);
    });
  }

  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    form.hidden = false;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (pendingAutofill) {
        pendingAutofill.abort();
        pendingAutofill = null;
      }
      run(form, "modal").then(
        function (cred) {
          if (cred) {
            finish(form, cred);
          }
        },
        function () {
          showError(form, "The passkey was not used. You can try again, or use another way.");
        }
      );
    });
  });

  // Browser autofill (conditional mediation): the login page's email field offers passkeys.
  var auto = document.querySelector('form[data-passkey="sign-in"][data-autofill]');
  if (auto && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
      if (!ok) {
        return;
      }
      run(auto, "conditional").then(
        function (cred) {
          if (cred) {
            finish(auto, cred);
          }
        },
        function () {}
      );
    });
  }
})();
