"""Sign-in: emailed one-time codes, Google ID tokens, browser sessions and device linking.

models.py       email_codes, browser_sessions, device_links (secrets stored only as hashes)
email_codes.py  6-digit codes: issue, redeem (attempts, expiry, keyed hash)
mailer.py       SMTP delivery (aiosmtplib), or the log when no SMTP is configured
google.py       ID-token verification with google-auth over cached certificates
sessions.py     server-side browser sessions
device_link.py  RFC 8628-style device authorization: start, describe, decide, poll
runtime.py      per-app policies, mailer, Google verifier and abuse limits (`app.state.auth`)
browser.py      session and CSRF cookies, the CSRF check
flows.py        the use cases shared by the JSON routes and the pages in backend/web
schemas.py      request bodies and response shapes
routes.py       /api/v1/auth/* and /api/v1/device/link/*
"""
