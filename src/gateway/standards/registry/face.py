"""The registry's async face: each read or change one short call on the record store's thread."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gateway.records.store import RecordStore
from gateway.standards.errors import NotFound
from gateway.standards.files import CertificateFiles, FileState
from gateway.standards.models import (
    CertificateSpec,
    StandardSpec,
)
from gateway.standards.registry.reading import load_certificate, load_standard, load_standards
from gateway.standards.registry.records import (
    CertificateRecord,
    FileInfo,
    NewCertificate,
    StandardRecord,
    TraceabilityChain,
)
from gateway.standards.registry.traceability import traceability_chain
from gateway.standards.registry.writing import (
    attach_file,
    insert_certificate,
    insert_standard,
    transaction,
    update_certificate,
    update_standard,
)

T = TypeVar("T")


class Registry:
    """The registry over a :class:`RecordStore` and the certificate files' directory."""

    def __init__(self, records: RecordStore, certificates_dir: Path, default_site: str) -> None:
        self.records = records
        self.files = CertificateFiles(certificates_dir)
        self.default_site = default_site

    async def standards(self, active_only: bool = False) -> list[StandardRecord]:
        """Every standard with its certificates."""
        return await self.records.run(lambda db: load_standards(db, True, active_only))

    async def standard(self, standard_id: str) -> StandardRecord:
        """One standard (NotFound if unknown)."""
        found = await self.records.run(lambda db: load_standard(db, standard_id))
        if found is None:
            raise NotFound(f"no standard {standard_id}")
        return found

    async def certificate(self, standard_id: str, certificate_id: int) -> CertificateRecord:
        """One certificate of a standard (NotFound if it is not one of its)."""
        found = await self.records.run(lambda db: load_certificate(db, certificate_id))
        if found is None or found.standard != standard_id:
            raise NotFound(f"standard {standard_id} has no certificate {certificate_id}")
        return found

    async def add_standard(self, spec: StandardSpec, actor: str) -> StandardSpec:
        """Register a standard."""
        return await self.records.run(
            lambda db: transaction(
                db, lambda db: insert_standard(db, spec, actor, self.default_site)
            )
        )

    async def update_standard(self, spec: StandardSpec, actor: str) -> bool:
        """Change a standard; True if anything changed."""
        _, changed = await self.records.run(
            lambda db: transaction(
                db, lambda db: update_standard(db, spec, actor, self.default_site)
            )
        )
        return changed

    async def add_certificate(
        self,
        standard_id: str,
        spec: CertificateSpec,
        actor: str,
        file: tuple[bytes, str] | None = None,
    ) -> int:
        """Register a certificate, keeping its file (bytes, original name) if given."""
        stored, new = (None, False)
        if file is not None:
            stored, new = await self._io(lambda: self.files.put(*file))
        try:
            return await self.records.run(
                lambda db: transaction(
                    db,
                    lambda db: insert_certificate(
                        db, NewCertificate(standard_id, spec, stored), actor
                    ),
                )
            )
        except BaseException:
            if stored is not None and new:
                self.files.remove(stored)
            raise

    async def update_certificate(
        self, standard_id: str, certificate_id: int, spec: CertificateSpec, actor: str
    ) -> bool:
        """Correct a certificate; True if anything changed."""
        await self.certificate(standard_id, certificate_id)
        return await self.records.run(
            lambda db: transaction(
                db, lambda db: update_certificate(db, certificate_id, spec, actor)
            )
        )

    async def attach_file(
        self, standard_id: str, certificate_id: int, data: bytes, name: str, actor: str
    ) -> FileInfo:
        """Keep a certificate's file and record it."""
        await self.certificate(standard_id, certificate_id)
        stored, _ = await self._io(lambda: self.files.put(data, name))
        await self.records.run(
            lambda db: transaction(db, lambda db: attach_file(db, certificate_id, stored, actor))
        )
        return FileInfo(
            name=stored.name,
            sha256=stored.sha256,
            size=stored.size,
            media_type=stored.media_type,
            state="ok",
        )

    async def traceability(self, standard_id: str) -> TraceabilityChain:
        """The traceability chain of a standard."""
        return await self.records.run(lambda db: traceability_chain(db, standard_id))

    async def _io(self, work: Callable[[], T]) -> T:
        """Blocking file work (hashing, fsync) off the event loop, on the record store's thread:
        short, and no thread of its own to manage."""
        return await self.records.run(lambda _db: work())

    async def verified(self, certificate: CertificateRecord) -> CertificateRecord:
        """The certificate with its file's hash verified now (off the event loop)."""
        return await self._io(lambda: self.checked(certificate))

    async def read_file(self, certificate: CertificateRecord) -> tuple[bytes, FileState]:
        """A certificate's file and whether it still has its recorded hash."""
        if certificate.file is None:
            raise NotFound(f"certificate {certificate.number} has no file")
        stored = certificate.file.stored()
        return await self._io(lambda: self.files.read(stored))

    def checked(self, certificate: CertificateRecord) -> CertificateRecord:
        """The certificate with its file's hash verified now."""
        if certificate.file is None:
            return certificate
        state = self.files.verify(certificate.file.stored())
        return certificate.model_copy(
            update={"file": certificate.file.model_copy(update={"state": state})}
        )
