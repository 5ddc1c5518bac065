"""What a plugin asks the host for: a policy document in corral's policy grammar."""

from __future__ import annotations


class Capabilities:
    """Each call adds one ALLOW statement or one limit."""

    def __init__(self) -> None:
        self._permissions: list[dict] = []
        self._limits: dict = {}

    def http(self, methods: list[str], url_glob: str) -> "Capabilities":
        """HTTP `methods` to URLs matching `url_glob` (`{{config.apiUrl}}*`)."""
        if methods:
            self._allow([f"http:{m.upper()}" for m in methods], url_glob)
        return self

    def secret(self, name: str, url_glob: str) -> "Capabilities":
        """Using the secret field `name`, only in requests to URLs matching `url_glob`."""
        return self._allow(["secret:Use"], f"secret:{name}", {"stringLike": {"http:url": url_glob}})

    def graph(self, type_glob: str) -> "Capabilities":
        """Emitting and reading objects whose `_type` matches `type_glob` (`type:acme_*`)."""
        return self._allow(["graph:EmitEntity", "graph:EmitRelationship", "graph:Read"], type_glob)

    def limit(self, name: str, value: float) -> "Capabilities":
        """`requestsPerSecond`, `maxConcurrentRequests`, `memoryMiB`, ... (the operator's
        policy can only lower them)."""
        self._limits[name] = value
        return self

    def quota_key(self, key: str) -> "Capabilities":
        self._limits["quotaKey"] = key
        return self

    def to_json(self) -> dict:
        doc: dict = {"permissions": self._permissions}
        if self._limits:
            doc["limits"] = self._limits
        return doc

    def _allow(self, actions: list[str], resource: str, condition: dict | None = None) -> "Capabilities":
        statement = {"effect": "ALLOW", "actions": actions, "resources": [resource]}
        if condition is not None:
            statement["condition"] = condition
        self._permissions.append(statement)
        return self
