#!/usr/bin/env python3
"""A sign-in across two Castellan instances (see scripts/two-instances.sh), standard library only.

The authorization request and the login pages go to instance A; the code exchange, UserInfo
and a refresh go to instance B, and a second refresh to A. Then failed sign-ins alternate
between A and B until the shared count (login_per_minute, counted in Redis) refuses one.
Exits non-zero on the first step that does not answer as it should.
"""
import argparse
import base64
import hashlib
import html.parser
import http.cookiejar
import json
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

REDIRECT_URI = "http://127.0.0.1:9/cb"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Forms(html.parser.HTMLParser):
    """The forms of a page: action and inputs (name -> value)."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "inputs": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value") or ""


def browser():
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())


def call(opener, url, data=None, headers=None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


def step(ok, what, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (f": {detail}" if detail and not ok else ""))
    if not ok:
        sys.exit(1)


def login_form(opener, url):
    status, _, page = call(opener, url)
    step(status == 200, "the login page", status)
    p = Forms()
    p.feed(page)
    form = next((f for f in p.forms if "password" in f["inputs"]), None)
    step(form is not None, "a login form on it")
    return urllib.parse.urljoin(url, form["action"] or url), form["inputs"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--client", required=True, help="client create --json output")
    ap.add_argument("--email", required=True)
    ap.add_argument("--password", required=True)
    args = ap.parse_args()
    client = json.load(open(args.client))
    cid, secret = client["client_id"], client["client_secret"]
    basic = "Basic " + base64.b64encode(
        f"{urllib.parse.quote(cid, safe='')}:{urllib.parse.quote(secret, safe='')}".encode()
    ).decode()

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": cid, "redirect_uri": REDIRECT_URI,
        "scope": "openid email offline_access", "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12), "code_challenge": challenge,
        "code_challenge_method": "S256",
    })
    b = browser()
    status, headers, _ = call(b, f"{args.a}/oauth2/authorize?{query}")
    step(status in (302, 303), "A: the authorization request sends the browser to log in", status)
    login_url = urllib.parse.urljoin(args.a + "/", headers["location"])
    action, inputs = login_form(b, login_url)
    inputs.update(email=args.email, password=args.password)
    status, headers, body = call(b, action, inputs)
    step(status in (302, 303), "A: the login POST", f"{status} {body[:200]}")
    url = urllib.parse.urljoin(args.a + "/", headers["location"])
    for _ in range(3):  # back to the authorization endpoint, then to the client
        if url.startswith(REDIRECT_URI):
            break
        status, headers, _ = call(b, url)
        url = urllib.parse.urljoin(args.a + "/", headers.get("location", ""))
    code = urllib.parse.parse_qs(urllib.parse.urlparse(url).query).get("code", [None])[0]
    step(code is not None, "A: the authorization code", url)

    rp = browser()
    status, _, body = call(rp, f"{args.b}/oauth2/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }, {"Authorization": basic})
    step(status == 200, "B: the code issued by A is exchanged", body)
    tokens = json.loads(body)
    status, _, body = call(rp, f"{args.b}/oauth2/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    step(status == 200 and json.loads(body).get("email") == args.email, "B: UserInfo", body)
    status, _, body = call(rp, f"{args.b}/oauth2/token", {
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, {"Authorization": basic})
    step(status == 200, "B: refresh", body)
    status, _, body = call(rp, f"{args.a}/oauth2/token", {
        "grant_type": "refresh_token", "refresh_token": json.loads(body)["refresh_token"]}, {"Authorization": basic})
    step(status == 200, "A: refresh with the token B rotated", body)

    # Failed sign-ins alternate between the instances; the limit (3 a minute) is one count.
    statuses = []
    for i in range(4):
        base = args.a if i % 2 == 0 else args.b
        page = browser()
        action, inputs = login_form(page, base + "/login")
        inputs.update(email=args.email, password="not the password")
        status, _, _ = call(page, action, inputs)
        statuses.append(status)
    step(statuses[:3] == [200] * 3 and statuses[3] == 429,
         "failed sign-ins A, B, A, B: the fourth is refused (429) through Redis", statuses)
    print("signed in across two instances")


if __name__ == "__main__":
    main()
