"""One delivery attempt over one medium: a webhook POST (httpx, HMAC-signed) or an e-mail
through SMTP (smtplib on a thread of its own); a failure is :class:`DeliveryFailed`, permanent
when repeating it cannot help."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import smtplib
import ssl
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage

import httpx

from edge_agent import __version__
from gateway.alerts.config import SmtpConfig, WebhookConfig


class DeliveryFailed(Exception):
    """One attempt failed; ``permanent`` when repeating it cannot help (HTTP 4xx, refused)."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        self.reason = reason
        self.permanent = permanent
        super().__init__(reason)


class WebhookSender:
    """POSTs JSON to one webhook (httpx; the body signed with HMAC-SHA256 when a secret is set)."""

    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        verify: bool | ssl.SSLContext = config.verify_tls
        if config.ca_file is not None and config.verify_tls:
            verify = ssl.create_default_context(cafile=str(config.ca_file))
        self._client = httpx.AsyncClient(
            timeout=config.timeout_s,
            verify=verify,
            trust_env=False,
            proxy=str(config.proxy) if config.proxy else None,
        )
        self._secret = config.secret.resolve().encode() if config.secret else None

    async def send(self, body: bytes, delivery: str) -> None:
        """One attempt; raises DeliveryFailed."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"etalon/{__version__}",
            "X-Etalon-Delivery": delivery,
        }
        if self._secret is not None:
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers["X-Etalon-Signature"] = f"sha256={digest}"
        try:
            response = await self._client.post(str(self.config.url), content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        if 200 <= response.status_code < 300:
            return
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}", permanent)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


class SmtpSender:
    """Sends through one SMTP server (smtplib, on a thread of its own: it blocks)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alerts-smtp")
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        if not config.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._context = context

    def _send_blocking(self, message: EmailMessage) -> None:
        cfg = self.config
        client: smtplib.SMTP
        if cfg.security == "tls":
            client = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=cfg.timeout_s, context=self._context
            )
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        with client:
            client.ehlo()
            if cfg.security == "starttls":
                client.starttls(context=self._context)
                client.ehlo()
            if cfg.username is not None:
                password = cfg.password.resolve() if cfg.password else ""
                client.login(cfg.username, password)
            client.send_message(message)

    async def send(self, message: EmailMessage) -> None:
        """One attempt; raises DeliveryFailed."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._send_blocking, message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"recipient refused: {exc.recipients}", permanent=True) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Let a send in progress finish (bounded by the SMTP timeout), then stop the thread."""
        # The worker runs jobs in order: once this no-op ran, it is idle and shutdown is quick.
        await asyncio.wrap_future(self._executor.submit(lambda: None))
        self._executor.shutdown(wait=True)
