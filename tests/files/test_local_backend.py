"""The local backend enforces at upload time every rule an S3 POST policy states."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from session_service.core.settings import Settings
from session_service.storage.tokens import TokenSigner, load_signing_keys
from tests.conftest import FakeClock
from tests.files.helpers import PDF, file_rows, post_form, request_slot, upload_file
from tests.helpers import Running, assert_problem, create_session, holder

UPLOADS = "/api/v1/storage/uploads"


@pytest.fixture
def store_backend() -> str:
    """These rules are the local backend's own (S3 enforces its policy itself)."""
    return "local"


@pytest.fixture
async def slot(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await request_slot(client, await create_session(client))
    assert response.status_code == 201
    upload: dict[str, Any] = response.json()["upload"]
    return upload


def _incoming(settings: Settings) -> list[str]:
    return os.listdir(settings.storage.local_dir / "incoming")


async def _stored(app: Running, upload: dict[str, Any]) -> bool:
    return await app.resources.store.inspect(upload["fields"]["key"], first_bytes=0) is not None


class TestUploadEnforcement:
    async def test_a_good_upload_is_stored(
        self, client: httpx.AsyncClient, app: Running, slot: dict[str, Any]
    ) -> None:
        response = await post_form(client, slot, PDF)
        assert response.status_code == 204
        assert await _stored(app, slot)

    async def test_a_large_file_arriving_with_the_token_in_one_chunk_is_accepted(
        self, client: httpx.AsyncClient, app: Running
    ) -> None:
        """Browsers send the token field and the file's first bytes together."""
        session = await create_session(client)
        big = b"%PDF-1.7\n" + b"0" * (1536 * 1024)
        upload = (await request_slot(client, session, size=len(big))).json()["upload"]
        form = httpx.Request(
            "POST", upload["url"], data=upload["fields"], files={"file": ("a.pdf", big)}
        )
        body = form.read()  # one piece: the server receives it as a single chunk
        response = await client.post(
            upload["url"], content=body, headers={"content-type": form.headers["content-type"]}
        )
        assert response.status_code == 204, response.text

    async def test_more_bytes_than_the_slot_allows_is_413(
        self,
        client: httpx.AsyncClient,
        app: Running,
        settings: Settings,
        slot: dict[str, Any],
    ) -> None:
        response = await post_form(client, slot, PDF + b"!")
        assert_problem(response, 413, "upload_too_large")
        assert not await _stored(app, slot)
        assert _incoming(settings) == []

    async def test_an_oversize_stream_is_cut_off_early(
        self, client: httpx.AsyncClient, app: Running, slot: dict[str, Any]
    ) -> None:
        sent = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            boundary = b"--b0undary"
            for name, value in slot["fields"].items():
                sent += 1
                yield (
                    boundary
                    + b'\r\nContent-Disposition: form-data; name="'
                    + name.encode()
                    + b'"\r\n\r\n'
                    + value.encode()
                    + b"\r\n"
                )
            yield (
                boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n'
            )
            for _ in range(1000):  # 64 MiB if read to the end
                sent += 1
                yield b"%PDF-" + b"x" * (64 * 1024 - 5)

        response = await client.post(
            UPLOADS,
            content=body(),
            headers={"content-type": "multipart/form-data; boundary=b0undary"},
        )
        assert_problem(response, 413, "upload_too_large")
        assert sent < 20  # stopped reading after the first chunks, never held it all
        assert not await _stored(app, slot)

    @pytest.mark.parametrize("field", ["Content-Type", "key"])
    async def test_a_field_that_differs_from_the_slot_is_403(
        self, client: httpx.AsyncClient, app: Running, slot: dict[str, Any], field: str
    ) -> None:
        changed = {**slot["fields"]}
        changed[field] = "text/html" if field == "Content-Type" else changed["key"] + ".exe"
        response = await post_form(client, slot, PDF, fields=changed)
        assert_problem(response, 403, "upload_policy_violation")
        assert not await _stored(app, slot)

    async def test_an_expired_slot_is_403(
        self, client: httpx.AsyncClient, app: Running, slot: dict[str, Any], clock: FakeClock
    ) -> None:
        clock.advance(timedelta(minutes=5, seconds=1))
        response = await post_form(client, slot, PDF)
        assert_problem(response, 403, "upload_expired")
        assert not await _stored(app, slot)

    async def test_a_slot_is_single_use(
        self, client: httpx.AsyncClient, app: Running, settings: Settings, slot: dict[str, Any]
    ) -> None:
        assert (await post_form(client, slot, PDF)).status_code == 204
        other = b"%PDF-" + b"y" * (len(PDF) - 5)
        response = await post_form(client, slot, other)
        assert_problem(response, 409, "upload_already_used")
        info = await app.resources.store.inspect(slot["fields"]["key"], first_bytes=len(PDF))
        assert info is not None
        assert info.first_bytes == PDF  # the first upload is untouched
        assert _incoming(settings) == []

    @pytest.mark.parametrize(
        "token",
        ["", "garbage", "eyJrZXkiOiJ4In0.forged-signature"],
    )
    async def test_forged_tokens_are_403(
        self, client: httpx.AsyncClient, slot: dict[str, Any], token: str
    ) -> None:
        response = await post_form(client, slot, PDF, fields={**slot["fields"], "token": token})
        assert_problem(response, 403, "upload_token_invalid")

    async def test_a_token_signed_with_another_key_is_403(
        self, client: httpx.AsyncClient, slot: dict[str, Any], clock: FakeClock
    ) -> None:
        forged = TokenSigner(["not-our-key"], salt="upload", clock=clock).sign(
            {"key": slot["fields"]["key"], "type": "application/pdf", "max": 10**9},
            expires_at=clock.now + timedelta(hours=1),
        )
        response = await post_form(client, slot, PDF, fields={**slot["fields"], "token": forged})
        assert_problem(response, 403, "upload_token_invalid")

    async def test_a_download_token_is_not_an_upload_token(
        self, client: httpx.AsyncClient, app: Running, slot: dict[str, Any]
    ) -> None:
        url = await app.resources.store.download_url(
            slot["fields"]["key"], filename="x.pdf", expires_in=timedelta(minutes=5)
        )
        token = url.rsplit("/", 1)[1]
        response = await post_form(client, slot, PDF, fields={**slot["fields"], "token": token})
        assert_problem(response, 403, "upload_token_invalid")

    async def test_an_empty_file_is_400(
        self, client: httpx.AsyncClient, app: Running, slot: dict[str, Any]
    ) -> None:
        assert_problem(await post_form(client, slot, b""), 400, "upload_empty")
        assert not await _stored(app, slot)

    async def test_malformed_posts_are_400(
        self, client: httpx.AsyncClient, slot: dict[str, Any]
    ) -> None:
        no_file = await client.post(UPLOADS, data=slot["fields"], files={"other": ("x", b"1")})
        assert_problem(no_file, 400, "upload_form_invalid")
        not_multipart = await client.post(UPLOADS, json=slot["fields"])
        assert_problem(not_multipart, 400, "upload_form_invalid")
        truncated = await client.post(
            UPLOADS,
            content=b'--b\r\nContent-Disposition: form-data; name="key"\r\n\r\nabc',
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert_problem(truncated, 400, "upload_form_invalid")

    async def test_the_file_before_its_fields_is_refused(
        self, client: httpx.AsyncClient, slot: dict[str, Any]
    ) -> None:
        response = await post_form(client, slot, PDF, fields={})
        assert_problem(response, 400, "upload_form_invalid")


BOUNDARY = "b0undary"
Part = tuple[str, bytes]  # a part's header lines, its content


def _field(name: str, value: str) -> Part:
    return f'Content-Disposition: form-data; name="{name}"', value.encode()


def _file(content: bytes = PDF, name: str = "file") -> Part:
    return f'Content-Disposition: form-data; name="{name}"; filename="a.pdf"', content


def _body(parts: list[Part], *, end: bytes = b"--" + BOUNDARY.encode() + b"--\r\n") -> bytes:
    """A multipart body of `parts` (header lines, content), closed by `end`."""
    body = b""
    for headers, content in parts:
        body += f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"
    return body + end


def _malformed(slot_fields: dict[str, str]) -> dict[str, tuple[str | None, bytes]]:
    """Forms that are not the slot's: name -> (Content-Type, None for the usual; body)."""
    fields = [_field(name, value) for name, value in slot_fields.items()]
    renamed = [_field(name.upper(), value) for name, value in slot_fields.items()]
    multipart = "multipart/form-data"
    return {
        "boundary_over_256_characters": (f"{multipart}; boundary={'a' * 300}", b"--" + b"a" * 300),
        "boundary_missing": (multipart, _body([*fields, _file()])),
        "boundary_empty": (f"{multipart}; boundary=", _body([*fields, _file()])),
        "not_multipart": ("application/octet-stream", PDF),
        "empty_body": (None, b""),
        "garbage": (None, b"\x00\xff" * 100),
        "truncated_in_the_file": (None, _body([*fields, _file()], end=b"")[:-40]),
        "truncated_in_part_headers": (None, _body(fields, end=b"--b0undary\r\nContent-Dis")),
        "no_closing_boundary": (None, _body([*fields, _file()], end=b"")),
        "no_file_part": (None, _body(fields)),
        "two_file_parts": (None, _body([*fields, _file(), _file()])),
        "a_field_after_the_file": (None, _body([*fields, _file(), _field("x", "1")])),
        "an_unknown_field": (None, _body([*fields, _field("other", "1"), _file()])),
        "field_names_in_another_case": (None, _body([*renamed, _file()])),
        "a_field_missing": (None, _body([*fields[:2], _file()])),
        "a_field_twice": (None, _body([*fields, fields[0], _file()])),
        "a_part_without_a_name": (None, _body([*fields, ("Content-Disposition: form-data", b"")])),
        "a_part_without_disposition": (None, _body([*fields, ("Content-Type: text/plain", b"")])),
        "the_file_under_another_name": (None, _body([*fields, _file(name="upload")])),
    }


MALFORMED = sorted(_malformed({"key": "", "Content-Type": "", "token": ""}))


class TestMalformedForms:
    """Any shape other than the slot's form is a 400 that stores and leaves nothing."""

    @pytest.mark.parametrize("variant", MALFORMED)
    async def test_is_400(
        self,
        client: httpx.AsyncClient,
        app: Running,
        settings: Settings,
        slot: dict[str, Any],
        variant: str,
    ) -> None:
        content_type, body = _malformed(slot["fields"])[variant]
        content_type = content_type or f"multipart/form-data; boundary={BOUNDARY}"
        response = await client.post(UPLOADS, content=body, headers={"content-type": content_type})
        assert_problem(response, 400, "upload_form_invalid")
        assert not await _stored(app, slot)
        assert _incoming(settings) == []

    async def test_the_well_formed_body_the_variants_start_from_is_accepted(
        self, client: httpx.AsyncClient, app: Running, slot: dict[str, Any]
    ) -> None:
        fields = [_field(name, value) for name, value in slot["fields"].items()]
        response = await client.post(
            UPLOADS,
            content=_body([*fields, _file()]),
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        assert response.status_code == 204, response.text
        assert await _stored(app, slot)


class TestDownloads:
    async def _download_url(self, client: httpx.AsyncClient) -> str:
        session = await create_session(client)
        file = await upload_file(client, session)
        response = await client.get(
            f"/api/v1/session/files/{file['id']}/download", headers=holder(session)
        )
        url: str = response.json()["url"]
        return url

    async def test_expired_or_altered_links_are_403(
        self, client: httpx.AsyncClient, clock: FakeClock
    ) -> None:
        url = await self._download_url(client)
        assert_problem(await client.get(url[:-3] + "abc"), 403, "download_refused")
        clock.advance(timedelta(minutes=5, seconds=1))
        assert_problem(await client.get(url), 403, "download_refused")

    async def test_a_deleted_file_is_404(self, client: httpx.AsyncClient, app: Running) -> None:
        url = await self._download_url(client)
        [row] = await file_rows(app)
        await app.resources.store.delete_many([row["storage_key"]])
        assert_problem(await client.get(url), 404, "file_not_found")
        assert (await client.get(url)).headers["content-type"].startswith("application/problem")

    async def test_the_link_carries_ids_only_and_the_name_comes_from_the_row(
        self, client: httpx.AsyncClient
    ) -> None:
        session = await create_session(client)
        file = await upload_file(client, session, name="Medical report Jane.pdf")
        url = (
            await client.get(
                f"/api/v1/session/files/{file['id']}/download", headers=holder(session)
            )
        ).json()["url"]
        token = url.rsplit("/", 1)[1]
        # A signed token is readable: decode every part and look for the name.
        readable = b"".join(
            base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            for part in token.split(".")
            if part
        )
        assert b"Medical" not in readable
        assert b"Jane" not in readable
        assert "Medical" not in url
        served = await client.get(url)
        assert served.status_code == 200
        assert "Medical%20report%20Jane.pdf" in served.headers["content-disposition"]

    async def test_a_link_to_a_file_deleted_since_is_404(self, client: httpx.AsyncClient) -> None:
        session = await create_session(client)
        file = await upload_file(client, session)
        url = (
            await client.get(
                f"/api/v1/session/files/{file['id']}/download", headers=holder(session)
            )
        ).json()["url"]
        deleted = await client.delete(
            f"/api/v1/session/files/{file['id']}", headers=holder(session)
        )
        assert deleted.status_code == 204
        assert_problem(await client.get(url), 404, "file_not_found")


class TestSigningKeys:
    def test_a_key_file_is_generated_once_with_owner_only_access(self, tmp_path: Path) -> None:
        key_file = tmp_path / "var" / "signing.key"
        first = load_signing_keys([], key_file)
        assert load_signing_keys([], key_file) == first
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert len(first[0]) >= 40

    def test_configured_keys_win(self, tmp_path: Path) -> None:
        assert load_signing_keys(["k1", "k2"], tmp_path / "unused") == ["k1", "k2"]
        assert not (tmp_path / "unused").exists()

    def test_rotation_old_tokens_verify_new_ones_are_signed_with_the_first_key(
        self, clock: FakeClock
    ) -> None:
        old = TokenSigner(["old"], salt="upload", clock=clock)
        rotated = TokenSigner(["new", "old"], salt="upload", clock=clock)
        expires = clock.now + timedelta(minutes=1)
        assert rotated.verify(old.sign({"a": 1}, expires_at=expires))["a"] == 1
        new_only = TokenSigner(["new"], salt="upload", clock=clock)
        assert new_only.verify(rotated.sign({"a": 2}, expires_at=expires))["a"] == 2
