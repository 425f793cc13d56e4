"""Operating-system errors by errno, in both languages (agent.oserror.os_error picks one)."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "os.ENOENT": {"en": "no such file or directory", "es": "no existe el archivo o la carpeta"},
    "os.EACCES": {"en": "permission denied", "es": "permiso denegado"},
    "os.EPERM": {"en": "operation not permitted", "es": "operación no permitida"},
    "os.ENOSPC": {"en": "no space left on the disk", "es": "no queda espacio en el disco"},
    "os.EDQUOT": {"en": "disk quota exceeded", "es": "se superó la cuota de disco"},
    "os.EROFS": {"en": "the disk is read-only", "es": "el disco es de solo lectura"},
    "os.EIO": {"en": "input/output error (a failing disk or cable?)",
               "es": "error de entrada/salida (¿disco o cable dañado?)"},
    "os.EISDIR": {"en": "it is a folder, not a file", "es": "es una carpeta, no un archivo"},
    "os.ENOTDIR": {"en": "a part of the path is not a folder",
                   "es": "una parte de la ruta no es una carpeta"},
    "os.EEXIST": {"en": "it already exists", "es": "ya existe"},
    "os.EBUSY": {"en": "in use by another program", "es": "en uso por otro programa"},
    "os.ESRCH": {"en": "no such process", "es": "no existe ese proceso"},
    "os.ECONNREFUSED": {"en": "connection refused (nothing listening there)",
                        "es": "conexión rechazada (nada escucha ahí)"},
    "os.ECONNRESET": {"en": "connection reset by the other side",
                      "es": "la otra parte cortó la conexión"},
    "os.ETIMEDOUT": {"en": "timed out", "es": "se agotó el tiempo de espera"},
    "os.EHOSTUNREACH": {"en": "no route to the host", "es": "no hay ruta hacia el equipo"},
    "os.ENETUNREACH": {"en": "the network is unreachable (no link or no route)",
                       "es": "la red no es alcanzable (sin enlace o sin ruta)"},
    "os.EADDRINUSE": {"en": "the address is already in use", "es": "la dirección ya está en uso"},
    "os.EPIPE": {"en": "the other side closed the connection",
                 "es": "la otra parte cerró la conexión"},
    "os.not_utf8": {"en": "the file is not saved as UTF-8", "es": "el archivo no está guardado como UTF-8"},
    "os.other": {"en": "{error}", "es": "{error}"},
}
