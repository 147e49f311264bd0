"""MCP authorization discovery and registration, sans-IO (RFC 9728, 8414, 7591, 8707)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from sidecar.mcp.metadata import (
    Registration,
    as_metadata_urls,
    authorize_url,
    parse_as_metadata,
    parse_registration,
    parse_resource_metadata,
    prm_urls,
    registration_request,
    resource_metadata_from_header,
)

ISSUER = "https://auth.atlassian.com/VCeDsk8ZHncYF1g234fKtc4lNipbBhu3"
AS = {
    "issuer": ISSUER,
    "authorization_endpoint": "https://auth.atlassian.com/authorize",
    "token_endpoint": "https://auth.atlassian.com/oauth/token",
    "registration_endpoint": f"{ISSUER}/dcr/register",
    "code_challenge_methods_supported": ["S256"],
    "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
    "scopes_supported": ["read:jira:agent-interface", "offline_access"],
}


def test_resource_metadata_header() -> None:
    """The resource_metadata URL is read from Atlassian's Bearer challenge, quoted or not."""
    url = "https://mcp.atlassian.com/.well-known/oauth-protected-resource/v1/mcp/authv2"
    assert resource_metadata_from_header(f'Bearer resource_metadata="{url}"') == url
    assert resource_metadata_from_header(f'Bearer error="x", resource_metadata={url}') == url
    assert resource_metadata_from_header('Bearer realm="x"') is None


def test_well_known_locations() -> None:
    """Path-inserted well-known URLs come first (RFC 9728 §3.1, RFC 8414 §3.1)."""
    assert prm_urls("https://mcp.atlassian.com/v1/mcp") == [
        "https://mcp.atlassian.com/.well-known/oauth-protected-resource/v1/mcp",
        "https://mcp.atlassian.com/.well-known/oauth-protected-resource",
    ]
    assert as_metadata_urls(ISSUER)[0] == (
        "https://auth.atlassian.com/.well-known/oauth-authorization-server"
        "/VCeDsk8ZHncYF1g234fKtc4lNipbBhu3"
    )


def test_metadata_parsing_refuses_wrong_issuer_and_missing_s256() -> None:
    """Metadata for another issuer, or without S256, is not used."""
    server = parse_as_metadata(AS, ISSUER)
    assert server is not None
    assert server.registration_endpoint == f"{ISSUER}/dcr/register"
    assert parse_as_metadata({**AS, "issuer": "https://evil.example"}, ISSUER) is None
    assert parse_as_metadata({**AS, "code_challenge_methods_supported": ["plain"]}, ISSUER) is None
    prm = parse_resource_metadata(
        {"resource": "https://mcp.atlassian.com/v1/mcp", "authorization_servers": [ISSUER]}, "x"
    )
    assert prm is not None
    assert prm.authorization_servers == (ISSUER,)
    assert parse_resource_metadata({"authorization_servers": []}, "x") is None


def test_registration_confidential_or_public() -> None:
    """A returned secret makes a confidential client whatever was asked; none makes a public one."""
    server = parse_as_metadata(AS, ISSUER)
    assert server is not None
    assert registration_request("https://s/cb", server)["token_endpoint_auth_method"] == (
        "client_secret_post"
    )
    confidential = parse_registration(
        {"client_id": "c", "client_secret": "s", "token_endpoint_auth_method": "none"}
    )
    assert confidential == Registration("c", "s", "client_secret_post", None)
    assert parse_registration({"client_id": "c"}) == Registration("c", None, "none", None)
    assert parse_registration({"client_secret": "s"}) is None


def test_authorize_url_has_pkce_and_resource() -> None:
    """The authorize URL carries PKCE S256, the RFC 8707 resource and the scopes."""
    server = parse_as_metadata(AS, ISSUER)
    assert server is not None
    url = authorize_url(
        server,
        Registration("c", None, "none", None),
        redirect_uri="https://s/auth/mcp/callback",
        state="st",
        code_challenge="ch",
        resource="https://mcp.atlassian.com/v1/mcp",
        scopes=("read:jira:agent-interface", "offline_access"),
    )
    query = parse_qs(urlsplit(url).query)
    assert query["resource"] == ["https://mcp.atlassian.com/v1/mcp"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["read:jira:agent-interface offline_access"]
    assert query["client_id"] == ["c"]
