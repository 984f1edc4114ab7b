"""What an OPD clerk reads, in Bahasa Indonesia: one message per stable code of
:mod:`services.domain.errors` (the codes stay as they are; the English ``message`` stays for
logs and other systems). BPJS's own reasons are never translated: they are shown verbatim."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.domain import errors as E

MESSAGES: dict[str, str] = {
    E.MALFORMED_JSON: "Data tidak dapat dibaca (bukan JSON yang benar).",
    E.MESSAGE_TOO_LARGE: "Data terlalu besar untuk satu pendaftaran.",
    E.MISSING_FIELD: "Kolom wajib belum diisi.",
    E.INVALID_FIELD: "Isi kolom tidak sesuai format.",
    E.UNKNOWN_EVENT_TYPE: "Jenis kejadian tidak dikenal (registered atau deregistered).",
    E.UNSUPPORTED_SCHEMA_VERSION: "Versi format data tidak didukung.",
    E.INVALID_EVENT_ID: "ID kejadian bukan UUID yang benar.",
    E.INVALID_TIMESTAMP: "Waktu kejadian harus lengkap dengan zona waktu.",
    E.INVALID_PERIOD: "Bulan harus ditulis TTTT-BB, misalnya 2025-12.",
    E.INVALID_MONTHS: "Jumlah bulan harus 1 sampai 12.",
    E.UNKNOWN_CATEGORY: "Kategori pekerja tidak dikenal.",
    E.INVALID_SEX: "Jenis kelamin harus L/M (laki-laki) atau P/F (perempuan).",
    E.INVALID_DATE: "Tanggal tidak benar; tulis TTTT-BB-HH, misalnya 1990-05-12.",
    E.UNKNOWN_PROGRAMME: "Program tidak dikenal.",
    E.UNKNOWN_OPD: "OPD ini tidak terdaftar pada program.",
    E.INVALID_NIK: "NIK harus 16 angka sesuai KTP (kode wilayah, tanggal lahir, nomor urut).",
    E.UNKNOWN_REGENCY_CODE: "Kode kabupaten/kota pada NIK (angka 1-4) tidak dikenal.",
    E.UNKNOWN_KECAMATAN_CODE: "Kode kecamatan pada NIK (angka 5-6) tidak dikenal.",
    E.NIK_BIRTH_DATE_MISMATCH: "Tanggal lahir tidak sama dengan tanggal lahir pada NIK; "
                               "periksa kembali.",
    E.NIK_SEX_MISMATCH: "Jenis kelamin tidak sesuai dengan NIK (tanggal lahir perempuan "
                        "ditambah 40).",
    E.INVALID_NAME: "Nama lengkap tidak boleh kosong dan hanya berisi huruf.",
    E.INVALID_PHONE: "Nomor HP tidak benar; tulis misalnya 081234567890.",
    E.CATEGORY_NOT_ELIGIBLE: "Kategori pekerja ini tidak termasuk dalam program.",
    E.UNKNOWN_KECAMATAN: "Kecamatan tidak dikenal di wilayah program.",
    E.UNKNOWN_KELURAHAN: "Kelurahan tidak dikenal di kecamatan tersebut.",
    E.AGE_OUT_OF_RANGE: "Usia pekerja di luar batas usia program.",
    E.COVERAGE_BEFORE_PROGRAMME: "Bulan mulai sebelum program dimulai.",
    E.COVERAGE_AFTER_PROGRAMME: "Bulan mulai atau bulan terakhir sesudah program berakhir.",
    E.PROGRAMME_CLOSED: "Pendaftaran program sudah ditutup.",
    E.DUPLICATE_ENROLLMENT: "Pekerja sudah didaftarkan untuk bulan tersebut (oleh OPD ini "
                            "atau pembayar lain).",
    E.NOT_ENROLLED: "Pekerja tidak terdaftar pada program ini; tidak ada yang dihentikan.",
    E.DEREGISTRATION_NOT_PERMITTED: "Hanya OPD yang mendaftarkan atau OPD koordinator yang "
                                    "boleh menghentikan kepesertaan.",
    E.EFFECTIVE_PERIOD_IN_PAST: "Bulan berhenti sudah lewat; pilih bulan ini atau sesudahnya.",
    E.BACKDATING_REASON_REQUIRED: "Penghentian mundur hanya dengan alasan yang "
                                  "terdokumentasi (misalnya meninggal dunia dan tanggalnya).",
    E.EVENT_ALREADY_DECIDED: "ID kejadian ini sudah dipakai untuk data lain.",
    E.KEY_MISMATCH: "Kunci pesan tidak sesuai dengan NIK.",
    E.INTERNAL_ERROR: "Terjadi kesalahan sistem; kirim ulang nanti atau hubungi operator.",
    E.MALFORMED_SCHEDULE: "Jadwal iuran tidak sesuai format.",
    E.FORMULA_NOT_ALLOWED: "Sel berisi rumus; simpan sebagai nilai saja.",
    E.WRONG_COLUMN_COUNT: "Jumlah kolom pada baris ini tidak sesuai dengan judul kolom.",
    E.DUPLICATE_IN_FILE: "NIK ini muncul lebih dari sekali dalam berkas.",
    E.EXAMPLE_ROW: "Baris contoh dari templat; hapus sebelum mengunggah.",
}


def in_indonesian(code: str, message: str) -> str:
    """The OPD's message of ``code``; the English ``message`` when the code has none."""
    return MESSAGES.get(code, message)


def with_pesan(items: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Errors or warnings ({field, code, message}) with ``pesan`` added."""
    return [{**item, "pesan": in_indonesian(str(item.get("code")), str(item.get("message")))}
            for item in items]
