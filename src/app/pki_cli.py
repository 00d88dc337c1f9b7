"""``etalon pki init|issue|acl``: a lab CA and the certificates of the broker, gateways, agents.

The work is done by :mod:`core.pki`; this module is the command line and its texts. It imports
nothing of the gateway: an agent's machine may issue its own certificate. Exit status: 0 done,
1 refused (the reason is printed, nothing was written), 2 bad command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import pki
from core.exits import EXIT_CONFIG, EXIT_OK
from core.i18n import MessageTable, register, t

PKI_MESSAGES: MessageTable = {
    "pki.wrote": {"en": "wrote {path}", "vi": "đã ghi {path}"},
    "pki.wrote_key": {
        "en": "wrote {path} (private key, mode 0600: keep it on this machine)",
        "vi": "đã ghi {path} (khóa riêng, quyền 0600: giữ trên máy này)",
    },
    "pki.identity": {
        "en": "MQTT identity (certificate CN): {cn}",
        "vi": "danh tính MQTT (CN của chứng chỉ): {cn}",
    },
    "pki.ca_next": {
        "en": "next: etalon pki issue server broker --host HOST --dir {dir}; "
        "etalon pki issue gateway --site SITE --id ID --dir {dir}; "
        "etalon pki issue agent --site SITE --id ID --dir {dir}",
        "vi": "tiếp theo: etalon pki issue server broker --host HOST --dir {dir}; "
        "etalon pki issue gateway --site SITE --id ID --dir {dir}; "
        "etalon pki issue agent --site SITE --id ID --dir {dir}",
    },
    "pki.refused": {
        "en": "etalon pki: refused: {reason}",
        "vi": "etalon pki: từ chối: {reason}",
    },
    "pki.error.name": {
        "en": pki.REASONS["name"],
        "vi": "{what} {value!r}: chỉ chữ, số, '_', '.', '-', bắt đầu bằng chữ hoặc số, tối đa "
        "64 ký tự (đây là một cấp của chủ đề MQTT)",
    },
    "pki.error.reserved": {
        "en": pki.REASONS["reserved"],
        "vi": "tác tử {value!r}: tên này dành cho các chủ đề của cổng ({names})",
    },
    "pki.error.host": {
        "en": pki.REASONS["host"],
        "vi": "máy chủ {value!r}: không phải địa chỉ IP hay tên DNS",
    },
    "pki.error.no_host": {
        "en": pki.REASONS["no_host"],
        "vi": "chứng chỉ máy chủ cần ít nhất một máy chủ (tên DNS hoặc địa chỉ IP)",
    },
    "pki.error.server_name": {
        "en": pki.REASONS["server_name"],
        "vi": "tên máy chủ 'ca' là tên tệp của chính CA",
    },
    "pki.error.days": {
        "en": pki.REASONS["days"],
        "vi": "số ngày {value}: từ 1 đến {most}",
    },
    "pki.error.ca_name": {
        "en": pki.REASONS["ca_name"],
        "vi": "tên CA {value!r}: 1-64 ký tự in được",
    },
    "pki.error.exists": {
        "en": pki.REASONS["exists"],
        "vi": "{paths}: đã có, không ghi đè (--force để thay thế)",
    },
    "pki.error.no_ca": {
        "en": pki.REASONS["no_ca"],
        "vi": "không có CA trong {directory} (thiếu {missing}): chạy `etalon pki init` trước",
    },
    "pki.error.bad_ca": {
        "en": pki.REASONS["bad_ca"],
        "vi": "không đọc được CA trong {directory}: {detail}",
    },
    "pki.error.prefix": {
        "en": pki.REASONS["prefix"],
        "vi": "tiền tố {value!r}: các cấp chủ đề gồm chữ, số, '_' và '-'",
    },
    "pki.error.certificate": {
        "en": pki.REASONS["certificate"],
        "vi": "{path}: không phải chứng chỉ PEM đọc được: {detail}",
    },
}
"""The texts of ``etalon pki``; ``pki.error.CODE`` translates :data:`core.pki.REASONS`."""

register(PKI_MESSAGES)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", type=Path, default=Path("pki"), help="the PKI directory (default: ./pki)"
    )
    parser.add_argument("--days", type=int, help="validity in days")
    parser.add_argument("--key-type", choices=pki.KEY_TYPES, default="ecdsa-p256")
    parser.add_argument("--force", action="store_true", help="replace existing files")


def add_pki_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``etalon pki`` and its subcommands."""
    parser = sub.add_parser("pki", help="a lab CA and TLS certificates for the broker and clients")
    commands = parser.add_subparsers(dest="pki_command", required=True, metavar="COMMAND")
    init = commands.add_parser("init", help="create the lab CA (ca.pem, ca.key)")
    init.add_argument("--ca-name", default="etalon lab CA", help="the CA's common name")
    _common(init)
    issue = commands.add_parser("issue", help="issue a server, gateway or agent certificate")
    kinds = issue.add_subparsers(dest="pki_kind", required=True, metavar="KIND")
    server = kinds.add_parser("server", help="a broker or HTTPS API certificate")
    server.add_argument("name", help="file name stem, e.g. broker (broker.pem, broker.key)")
    server.add_argument(
        "--host",
        action="append",
        default=[],
        required=True,
        help="DNS name or IP address clients use (repeat for more)",
    )
    _common(server)
    for kind in ("gateway", "agent"):
        client = kinds.add_parser(kind, help=f"a {kind}'s client certificate (its MQTT identity)")
        client.add_argument("--site", required=True)
        client.add_argument("--id", required=True, dest="ident", metavar="ID")
        _common(client)
    acl = commands.add_parser("acl", help="print a Mosquitto ACL file for certificate identities")
    acl.add_argument(
        "--gateway",
        action="append",
        default=[],
        required=True,
        metavar="SITE/ID",
        help="a gateway allowed to read its site (repeat for more)",
    )
    acl.add_argument(
        "--revoke",
        action="append",
        default=[],
        metavar="SITE/AGENT",
        help="an agent whose certificate may no longer do anything (repeat for more)",
    )
    acl.add_argument("--prefix", default="etalon", help="the MQTT topic prefix (default etalon)")


def _site_and_name(entry: str) -> tuple[str, str]:
    site, _, name = entry.partition("/")
    return site, name


def _report(issued: pki.Issued, lang: str) -> None:
    print(t("pki.wrote", lang, path=issued.cert))
    print(t("pki.wrote_key", lang, path=issued.key))


def _run(args: argparse.Namespace, lang: str) -> int:
    command = args.pki_command
    if command == "acl":
        gateways = [_site_and_name(entry) for entry in args.gateway]
        revoked = [_site_and_name(entry) for entry in args.revoke]
        print(pki.acl_text(gateways, args.prefix, revoked), end="")
        return EXIT_OK
    if command == "init":
        issued = pki.init_ca(
            args.dir,
            name=args.ca_name,
            days=pki.CA_DAYS if args.days is None else args.days,
            key_type=args.key_type,
            force=args.force,
        )
        _report(issued, lang)
        print(t("pki.ca_next", lang, dir=args.dir))
        return EXIT_OK
    days = pki.LEAF_DAYS if args.days is None else args.days
    key_type, force = args.key_type, args.force
    if args.pki_kind == "server":
        issued = pki.issue_server(
            args.dir, args.name, args.host, days=days, key_type=key_type, force=force
        )
    elif args.pki_kind == "gateway":
        issued = pki.issue_gateway(
            args.dir, args.site, args.ident, days=days, key_type=key_type, force=force
        )
    else:
        issued = pki.issue_agent(
            args.dir, args.site, args.ident, days=days, key_type=key_type, force=force
        )
    _report(issued, lang)
    if args.pki_kind != "server":
        print(t("pki.identity", lang, cn=issued.common_name))
    return EXIT_OK


def pki_main(args: argparse.Namespace, lang: str) -> int:
    """Run one ``etalon pki`` command."""
    try:
        return _run(args, lang)
    except pki.PkiError as exc:
        reason = t(f"pki.error.{exc.code}", lang, **exc.values)
        print(t("pki.refused", lang, reason=reason), file=sys.stderr)
        return EXIT_CONFIG
