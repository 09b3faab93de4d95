"""A delivery's view of the postbus: the files of an aanvraag's bijlagen without inhoud.

Design: the document of a bijlage is created once, with its bytes. So the delivery of a StUF-LVO message
whose bijlagen lack ``inhoud`` does not start until every such bijlage's file was picked up into the
file store (``postbox-pickup``): until then it fails with ``WaitingError`` (retried with backoff, and
woken at once when a file arrives); after ``[postbus] missing_hours`` it goes to ``needs-attention``
naming the missing files (also woken when they come). Which picked-up file a bijlage got is checkpointed
(``postbus:<bijlageId>``), so a retry uses the same bytes, and the pickup job knows when the file's
document is on the zaak and the remote file may move to ``processed``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Engine

from adapter.errors import TargetRefused, WaitingError
from adapter.model import Bijlage, Verzoek
from adapter.postbox.names import candidate_names, safe_for_log
from adapter.store import postbox as store
from adapter.store.files import FileStore
from adapter.targets.base import Steps, run_step


@dataclass(frozen=True)
class PostbusLookup:
    engine: Engine
    files: FileStore
    missing_hours: float

    def fill(self, verzoek: Verzoek, received_at: datetime, steps: Steps) -> Verzoek:
        """The verzoek with every bijlage without inhoud pointing at its postbus file in the file store;
        ``WaitingError`` (or, after ``missing_hours``, ``TargetRefused``) while any file is missing."""
        if verzoek.bron != "stuf-lvo" or all(b.heeft_inhoud for b in verzoek.bijlagen):
            return verzoek
        filled: list[Bijlage] = []
        missing: list[Bijlage] = []
        for b in verzoek.bijlagen:
            if b.heeft_inhoud:
                filled.append(b)
                continue
            key = f"{store.STEP_PREFIX}{b.id}"
            got = steps.result(key)
            if got is None:
                found = store.find_stored(self.engine, verzoek.nummer, candidate_names(verzoek.nummer, b.bestandsnaam))
                if found is None or found.sha256 is None or not self.files.has(found.sha256, found.size):
                    missing.append(b)
                    filled.append(b)
                    continue
                f = found
                got = run_step(
                    steps,
                    key,
                    lambda f=f: {"file_id": f.id, "sha256": f.sha256, "grootte": f.size, "remote_name": f.remote_name},  # type: ignore[misc]
                )
            sha = str(got["sha256"])
            filled.append(replace(b, bestand=str(self.files.path_for(sha)), grootte=int(got["grootte"]), sha256=sha))
        if missing:
            names = ", ".join(
                f"{b.id} ({safe_for_log(candidate_names(verzoek.nummer, b.bestandsnaam)[0])})" for b in missing
            )
            if store.older_than(received_at, self.missing_hours):
                raise TargetRefused(
                    f"{store.WAITING_PREFIX} {len(missing)} bijlage(n) not in the postbus {self.missing_hours:g} h "
                    f"after the aanvraag: {names}; the delivery resumes by itself when the files arrive"
                )
            raise WaitingError(
                f"{store.WAITING_PREFIX} waiting for {len(missing)} bijlage(n) from the postbus: {names}",
                until=store.deadline(received_at, self.missing_hours),
            )
        return replace(verzoek, bijlagen=tuple(filled))
