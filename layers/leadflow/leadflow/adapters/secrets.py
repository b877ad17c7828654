"""Signing keys from AWS Secrets Manager, through Powertools Parameters (cached)."""

from __future__ import annotations

from leadflow.ports.secrets import MissingSecret

CACHE_SECONDS = 300


class SecretsManagerKeys:
    """The tracking keys: the secret's string, comma-separated (newest first) during a rotation."""

    def __init__(self, secret_id: str) -> None:
        self.secret_id = secret_id

    def __call__(self) -> list[bytes]:
        from aws_lambda_powertools.utilities import parameters

        value = str(parameters.get_secret(self.secret_id, max_age=CACHE_SECONDS))
        keys = [part.strip().encode("utf-8") for part in value.split(",") if part.strip()]
        if not keys:
            raise RuntimeError(f"secret {self.secret_id} holds no key")
        return keys


class SecretKey:
    """One HMAC key: the secret's whole string (``SuppressionKeySecret``). Never rotated: the
    suppression list holds hashes made with it, and the addresses behind them are gone."""

    def __init__(self, secret_id: str) -> None:
        self.secret_id = secret_id

    def __call__(self) -> bytes:
        from aws_lambda_powertools.utilities import parameters

        value = str(parameters.get_secret(self.secret_id, max_age=CACHE_SECONDS)).strip()
        if not value:
            raise RuntimeError(f"secret {self.secret_id} holds no key")
        return value.encode("utf-8")


class JsonSecret:
    """One JSON secret of named values (``CrmSecret``: webhook and CRM credentials), cached."""

    def __init__(self, secret_id: str) -> None:
        self.secret_id = secret_id

    def get(self, key: str) -> str:
        """The value under ``key``.

        Raises:
            MissingSecret: the secret has no such key, or it is empty.
        """
        from aws_lambda_powertools.utilities import parameters

        values = parameters.get_secret(self.secret_id, transform="json", max_age=CACHE_SECONDS)
        value = values.get(key) if isinstance(values, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise MissingSecret(f"secret {self.secret_id} has no value for {key!r}")
        return value.strip()
