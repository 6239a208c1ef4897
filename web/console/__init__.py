"""The DPO console: a data protection officer changes their agency's rules in a browser.

The same lifecycle as ``datatrust policy`` (draft, edit, diff in words, dry run, submit,
a second DPO's approval, publish, history, rollback) and a search of the agency's audit
ledger, on the portal's foundation (session, CSRF, sign-in, security headers, layout).
Mounted at ``/console`` on the portal's server.
"""

from datatrust.web.console._app import CONSOLE_COOKIE, create_console_app

__all__ = ["CONSOLE_COOKIE", "create_console_app"]
