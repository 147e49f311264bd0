"""Jira data of one emulated site: seeded projects and issues, their REST v3 JSON, a tiny JQL.

Pure data and rendering; the HTTP handlers live in `jira_views`. `self` links use the site URL,
as Jira's do through the gateway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .config import Site, User

__all__ = ["JiraIssue", "JiraProject", "JiraSite", "jira_time", "parse_jql", "seed_jira"]

_STATUSES: dict[str, tuple[str, int, str, str]] = {
    # name: (status id, category id, category key, category colour)
    "To Do": ("10000", 2, "new", "blue-gray"),
    "In Progress": ("3", 4, "indeterminate", "yellow"),
    "Done": ("10001", 3, "done", "green"),
}
_SEED_ISSUES = (
    ("Set up the CI pipeline", "Done", "Task"),
    ("Login page shows a blank screen in Safari", "In Progress", "Bug"),
    ("Add dark mode to the dashboard", "To Do", "Story"),
)
_SEED_TIME = datetime(2024, 5, 2, 9, 15, tzinfo=UTC).timestamp()
_CLAUSE = re.compile(
    r"""^\s*(?P<field>project|key|issuekey)\s*
        (?:=\s*(?P<one>"[^"]*"|'[^']*'|[\w-]+)|in\s*\((?P<many>[^)]*)\))\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


def jira_time(timestamp: float) -> str:
    """Format a timestamp as Jira does: `2024-05-02T09:15:00.000+0000`."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


@dataclass
class JiraProject:
    """A Jira project."""

    id: str
    key: str
    name: str


@dataclass
class JiraIssue:
    """A Jira issue with the handful of fields the emulator knows."""

    id: str
    key: str
    project: JiraProject
    summary: str
    status: str
    issuetype: str
    created: float
    description: Any = None


@dataclass
class JiraSite:
    """The projects and issues of one site, plus the user the site knows."""

    site: Site
    user: User
    projects: list[JiraProject] = field(default_factory=list)
    issues: list[JiraIssue] = field(default_factory=list)
    _next_id: int = 10001

    def project(self, key_or_id: str) -> JiraProject | None:
        """Find a project by key (any case), id or name."""
        wanted = key_or_id.casefold()
        return next(
            (p for p in self.projects if wanted in (p.key.casefold(), p.id, p.name.casefold())),
            None,
        )

    def issue(self, id_or_key: str) -> JiraIssue | None:
        """Find an issue by id or key (any case)."""
        wanted = id_or_key.upper()
        return next((i for i in self.issues if wanted in (i.id, i.key)), None)

    def add_issue(
        self,
        project: JiraProject,
        summary: str,
        issuetype: str,
        *,
        status: str,
        created: float,
        description: Any = None,
    ) -> JiraIssue:
        """Create an issue with the next id and key of its project."""
        number = 1 + sum(1 for i in self.issues if i.project is project)
        key = f"{project.key}-{number}"
        issue = JiraIssue(
            str(self._next_id), key, project, summary, status, issuetype, created, description
        )
        self._next_id += 1
        self.issues.append(issue)
        return issue

    def url(self, path: str) -> str:
        """Return an absolute site URL for a REST path."""
        return f"{self.site.url}/rest/api/3/{path}"

    def avatar_urls(self, kind: str, ident: str) -> dict[str, str]:
        """Return Jira's four avatar sizes for a project or user."""
        base = f"{self.site.url}/rest/api/3/universal_avatar/view/type/{kind}/avatar/{ident}"
        return {f"{n}x{n}": f"{base}?size={n}" for n in (48, 24, 16, 32)}

    def user_json(self) -> dict[str, Any]:
        """Render the site's user as Jira does (`myself`, reporter)."""
        user = self.user
        return {
            "self": self.url(f"user?accountId={user.account_id}"),
            "accountId": user.account_id,
            "accountType": "atlassian",
            "emailAddress": user.email,
            "avatarUrls": dict.fromkeys(("48x48", "24x24", "16x16", "32x32"), user.picture),
            "displayName": user.name,
            "active": True,
            "timeZone": user.zoneinfo,
            "locale": user.locale.replace("-", "_"),
        }

    def project_json(self, project: JiraProject) -> dict[str, Any]:
        """Render a project as `GET /rest/api/3/project` does."""
        return {
            "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
            "self": self.url(f"project/{project.id}"),
            "id": project.id,
            "key": project.key,
            "name": project.name,
            "avatarUrls": self.avatar_urls("project", "10400"),
            "projectTypeKey": "software",
            "simplified": False,
            "style": "classic",
            "isPrivate": False,
            "properties": {},
        }

    def issue_json(self, issue: JiraIssue, fields: set[str] | None = None) -> dict[str, Any]:
        """Render an issue; `fields` limits the `fields` object (None: all of them)."""
        status_id, category_id, category_key, colour = _STATUSES[issue.status]
        all_fields: dict[str, Any] = {
            "summary": issue.summary,
            "status": {
                "self": self.url(f"status/{status_id}"),
                "name": issue.status,
                "id": status_id,
                "statusCategory": {
                    "self": self.url(f"statuscategory/{category_id}"),
                    "id": category_id,
                    "key": category_key,
                    "colorName": colour,
                    "name": issue.status,
                },
            },
            "issuetype": {"name": issue.issuetype, "subtask": False},
            "project": {
                key: value
                for key, value in self.project_json(issue.project).items()
                if key in {"self", "id", "key", "name", "projectTypeKey", "simplified"}
            },
            "created": jira_time(issue.created),
            "updated": jira_time(issue.created),
            "description": issue.description,
            "reporter": self.user_json(),
            "assignee": None,
            "priority": {"self": self.url("priority/3"), "name": "Medium", "id": "3"},
            "labels": [],
        }
        chosen = (
            all_fields if fields is None else {k: all_fields[k] for k in fields & all_fields.keys()}
        )
        return {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog",
            "id": issue.id,
            "self": self.url(f"issue/{issue.id}"),
            "key": issue.key,
            "fields": chosen,
        }


def parse_jql(jql: str, site: JiraSite) -> list[JiraIssue] | str:
    """Run a very small JQL: `project = X`, `project in (X, Y)`, `key = K`, joined by AND.

    ORDER BY and clauses on other fields are ignored. Returns the matching issues, or Jira's
    error text for an unknown project.
    """
    where = re.split(r"\border\s+by\b", jql, maxsplit=1, flags=re.IGNORECASE)[0]
    issues = list(site.issues)
    for clause in filter(str.strip, re.split(r"\band\b", where, flags=re.IGNORECASE)):
        match = _CLAUSE.match(clause)
        if match is None:
            continue
        raw = match["one"] or match["many"]
        values = [v.strip().strip("'\"") for v in raw.split(",") if v.strip()]
        if match["field"].lower() == "project":
            projects = [site.project(v) for v in values]
            missing = [v for v, p in zip(values, projects, strict=True) if p is None]
            if missing:
                return f"The value '{missing[0]}' does not exist for the field 'project'."
            issues = [i for i in issues if i.project in projects]
        else:
            keys = {v.upper() for v in values}
            issues = [i for i in issues if i.key in keys or i.id in keys]
    return issues


def seed_jira(site: Site, user: User, *, first: bool) -> JiraSite:
    """Seed a site: project KEY (from the site name) with 3 issues on the first site, else 2."""
    key = re.sub(r"[^A-Z]", "", site.name.upper())[:10] or "PROJ"
    data = JiraSite(site, user)
    main = JiraProject("10000", key, f"{site.name.title()} Platform")
    data.projects.append(main)
    for offset, (summary, status, kind) in enumerate(_SEED_ISSUES[: 3 if first else 2]):
        data.add_issue(main, summary, kind, status=status, created=_SEED_TIME + offset * 3600)
    if first:
        ops = JiraProject("10001", "OPS", "Operations")
        data.projects.append(ops)
        data.add_issue(
            ops, "Rotate the on-call schedule", "Task", status="To Do", created=_SEED_TIME
        )
    return data
