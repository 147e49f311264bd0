"""The emulator's HTML: the consent screen, the id.atlassian.com-style error page, the index.

Self-contained pages (inline CSS, no external assets); every echoed value is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .config import EmulatorConfig, Site, User

__all__ = ["consent_page", "error_page", "index_page"]

_SCOPE_TEXT = {
    "offline_access": "Stay connected: keep access when you are not using the app",
    "read:me": "View your Atlassian profile (name, email, picture)",
    "read:jira-user": "View user information in Jira",
    "read:jira-work": "View Jira issue data",
    "write:jira-work": "Create and manage Jira issues",
    "manage:jira-project": "Manage Jira project settings",
    "manage:jira-configuration": "Manage Jira global settings",
    "read:confluence-content.summary": "Read a summary of your Confluence content",
    "read:confluence-content.all": "Read all your Confluence content",
    "write:confluence-content": "Create and update Confluence pages and comments",
    "read:page:confluence": "View Confluence pages",
    "read:space:confluence": "View Confluence spaces",
}

_STYLE = """
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,sans-serif;
background:#f4f5f7;color:#172b4d}
main{max-width:480px;margin:48px auto;background:#fff;border-radius:6px;padding:32px;
box-shadow:0 1px 3px rgba(9,30,66,.25)}
h1{font-size:20px;margin:0 0 16px}h2{font-size:14px;margin:24px 0 8px;color:#5e6c84;
text-transform:uppercase;letter-spacing:.04em}
ul{padding-left:20px;margin:0}li{margin:4px 0}code{font-size:12px;color:#5e6c84}
.brand{font-weight:700;color:#0052cc;margin-bottom:24px}.muted{color:#5e6c84;font-size:13px}
.actions{display:flex;gap:8px;justify-content:flex-end;margin-top:32px}
button{border:0;border-radius:3px;padding:8px 16px;font-size:14px;cursor:pointer}
.accept{background:#0052cc;color:#fff}.deny{background:#ebecf0;color:#42526e}
.error{color:#de350b}select{font-size:14px;padding:4px}
"""


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main><div class="brand">Atlassian (emulator)</div>{body}</main></body></html>\n'
    )


def _scope_item(scope: str) -> str:
    text = _SCOPE_TEXT.get(scope, "Access granted by this scope")
    return f"<li>{escape(text)} <code>{escape(scope)}</code></li>"


def _site_item(site: Site) -> str:
    products = ", ".join(p.title() for p in site.products)
    return f"<li>{escape(site.name)} <code>{escape(site.url)}</code> ({escape(products)})</li>"


def _user_block(users: Sequence[User]) -> str:
    if len(users) == 1:
        user = users[0]
        return f'<p class="muted">Signed in as {escape(user.name)} ({escape(user.email)})</p>'
    options = "".join(
        f'<option value="{escape(u.account_id)}">{escape(u.name)} ({escape(u.email)})</option>'
        for u in users
    )
    return f'<p class="muted">Signed in as <select name="account_id">{options}</select></p>'


def consent_page(
    config: EmulatorConfig,
    consent_id: str,
    scopes: Sequence[str],
    action: str = "/authorize/decision",
) -> str:
    """Render the consent screen: app, account, sites and scopes, with Accept and Deny.

    ``action`` is where the decision is posted (the MCP authorization server has its own).
    """
    sites = "".join(_site_item(s) for s in config.sites) or "<li>No sites</li>"
    body = (
        f"<h1>{escape(config.app_name)} is requesting access to your Atlassian account</h1>"
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="consent_id" value="{escape(consent_id)}">'
        f"{_user_block(config.users)}"
        f"<h2>Use app on</h2><ul>{sites}</ul>"
        f"<h2>This app will be able to</h2><ul>{''.join(_scope_item(s) for s in scopes)}</ul>"
        '<div class="actions">'
        '<button class="deny" type="submit" name="decision" value="deny">Deny</button>'
        '<button class="accept" type="submit" name="decision" value="accept">Accept</button>'
        "</div></form>"
    )
    return _document(f"Authorize {config.app_name}", body)


def error_page(error: str, description: str) -> str:
    """Render the error screen shown instead of redirecting to the app."""
    body = (
        "<h1>Something went wrong</h1>"
        f'<p class="error"><code>{escape(error)}</code></p>'
        f"<p>{escape(description)}</p>"
    )
    return _document("Something went wrong", body)


def index_page(config: EmulatorConfig) -> str:
    """Render a short description of this emulator: client, callbacks, sites, endpoints."""
    callbacks = "".join(f"<li><code>{escape(u)}</code></li>" for u in config.redirect_uris)
    body = (
        "<h1>Atlassian Cloud emulator</h1>"
        "<p>Plays https://auth.atlassian.com and https://api.atlassian.com for development.</p>"
        f"<h2>Client id</h2><p><code>{escape(config.client_id)}</code></p>"
        f"<h2>Callback URLs</h2><ul>{callbacks or '<li>any (none registered)</li>'}</ul>"
        f"<h2>Sites</h2><ul>{''.join(_site_item(s) for s in config.sites)}</ul>"
        "<h2>Endpoints</h2><ul><li><code>GET /authorize</code></li>"
        "<li><code>POST /oauth/token</code></li>"
        "<li><code>GET /oauth/token/accessible-resources</code></li><li><code>GET /me</code></li>"
        "<li><code>/ex/jira/{cloudId}/rest/api/3/...</code></li>"
        "<li><code>/ex/confluence/{cloudId}/wiki/api/v2/...</code></li></ul>"
    )
    return _document("Atlassian Cloud emulator", body)
