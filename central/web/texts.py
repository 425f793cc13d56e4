"""Every word of the web page, in Spanish (the default: Mexican Spanish) and English.

``MESSAGES[id] = {"es": ..., "en": ...}``, ``str.format`` placeholders, the same in both
(tests/central/test_web_units.py checks). Times are shown in the page's time zone.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

LANGUAGES = ("es", "en")
DEFAULT_LANGUAGE = "es"

MESSAGES: dict[str, dict[str, str]] = {
    "app.title": {"es": "Clínicas: estado de la flota", "en": "Clinics: fleet status"},
    "nav.fleet": {"es": "Flota", "en": "Fleet"},
    "nav.logout": {"es": "Salir", "en": "Log out"},
    "nav.user": {"es": "{user} ({role})", "en": "{user} ({role})"},
    "nav.other_lang": {"es": "English", "en": "Español"},
    "role.read-only": {"es": "solo lectura", "en": "read-only"},
    "role.operator": {"es": "operador", "en": "operator"},
    # -- login -------------------------------------------------------------------------------
    "login.title": {"es": "Iniciar sesión", "en": "Log in"},
    "login.user": {"es": "Usuario", "en": "User"},
    "login.password": {"es": "Contraseña", "en": "Password"},
    "login.submit": {"es": "Entrar", "en": "Log in"},
    "login.bad": {"es": "Usuario o contraseña incorrectos.", "en": "Wrong user or password."},
    "login.too_many": {"es": "Demasiados intentos. Espere {s} s y vuelva a intentar.",
                       "en": "Too many attempts. Wait {s} s and try again."},
    "login.expired": {"es": "El formulario caducó; vuelva a intentar.",
                      "en": "The form expired; please try again."},
    # -- errors ------------------------------------------------------------------------------
    "error.forbidden": {"es": "Su usuario ({role}) no puede hacer esto.",
                        "en": "Your account ({role}) may not do this."},
    "error.csrf": {"es": "El formulario caducó; recargue la página.",
                   "en": "The form expired; reload the page."},
    "error.not_found_page": {"es": "Esta página no existe.", "en": "There is no such page."},
    "error.not_found": {"es": "No existe la clínica {site}.", "en": "There is no clinic {site}."},
    "error.bad_request": {"es": "Solicitud no válida: {what}", "en": "Bad request: {what}"},
    "error.not_active": {"es": "Ese problema ya no está activo.",
                         "en": "That problem is no longer active."},
    "error.back": {"es": "Volver", "en": "Back"},
    # -- fleet page --------------------------------------------------------------------------
    "fleet.heading": {"es": "{n} clínicas", "en": "{n} clinics"},
    "fleet.updated": {"es": "Actualizado {time}", "en": "Updated {time}"},
    "fleet.live_error": {"es": "Sin actualizar desde {time}: reintentando",
                         "en": "Not updated since {time}: retrying"},
    "fleet.no_metrics": {
        "es": "VictoriaMetrics no responde: carga de batería, autonomía y pendientes desconocidos.",
        "en": "VictoriaMetrics is not answering: battery charge, runtime and backlog unknown."},
    "fleet.none": {"es": "Ninguna clínica con este filtro.",
                   "en": "No clinic matches this filter."},
    "filter.show": {"es": "Situación", "en": "Condition"},
    "filter.all": {"es": "Todas", "en": "All"},
    "filter.problems": {"es": "Con problemas", "en": "With problems"},
    "filter.state": {"es": "Estado", "en": "State"},
    "filter.municipality": {"es": "Municipio", "en": "Municipality"},
    "filter.any": {"es": "(todos)", "en": "(any)"},
    "filter.apply": {"es": "Filtrar", "en": "Filter"},
    "col.clinic": {"es": "Clínica", "en": "Clinic"},
    "col.status": {"es": "Situación", "en": "Condition"},
    "col.since": {"es": "Desde", "en": "Since"},
    "col.power": {"es": "Energía", "en": "Power"},
    "col.internet": {"es": "Internet", "en": "Internet"},
    "col.devices": {"es": "Equipos sin respuesta", "en": "Devices not answering"},
    "col.backlog": {"es": "Pendientes", "en": "Backlog"},
    "col.versions": {"es": "Agente / config.", "en": "Agent / config"},
    "state.offline": {"es": "Sin conexión", "en": "Offline"},
    "state.battery_low": {"es": "Batería baja", "en": "Battery low"},
    "state.on_battery": {"es": "En batería", "en": "On battery"},
    "state.wan_down": {"es": "Sin internet", "en": "Internet down"},
    "state.devices": {"es": "Equipos sin respuesta", "en": "Devices not answering"},
    "state.problem": {"es": "Otros problemas", "en": "Other problems"},
    "state.backlog": {"es": "Lecturas pendientes", "en": "Readings waiting"},
    "state.ok": {"es": "Bien", "en": "OK"},
    "since.never": {"es": "nunca se ha conectado", "en": "never connected"},
    "since.at": {"es": "{time} (hace {dur})", "en": "{time} ({dur} ago)"},
    "power.battery": {"es": "En batería desde {time}", "en": "On battery since {time}"},
    "power.charge": {"es": "{pct} %", "en": "{pct} %"},
    "power.runtime": {"es": "{min} min restantes", "en": "{min} min left"},
    "power.mains": {"es": "Red eléctrica", "en": "Mains"},
    "wan.down": {"es": "Caído desde {time}", "en": "Down since {time}"},
    "wan.up": {"es": "Bien", "en": "Up"},
    "unknown": {"es": "desconocido", "en": "unknown"},
    "dur.lt_min": {"es": "menos de 1 min", "en": "less than 1 min"},
    "dur.min": {"es": "{n} min", "en": "{n} min"},
    "dur.h_min": {"es": "{h} h {m} min", "en": "{h} h {m} min"},
    "dur.d_h": {"es": "{d} d {h} h", "en": "{d} d {h} h"},
    # -- a clinic's page ---------------------------------------------------------------------
    "clinic.title": {"es": "Clínica {site}", "en": "Clinic {site}"},
    "clinic.where": {"es": "{municipality}, {state}", "en": "{municipality}, {state}"},
    "clinic.last_seen": {"es": "Último mensaje: {time}", "en": "Last message: {time}"},
    "clinic.active": {"es": "Problemas activos", "en": "Active problems"},
    "clinic.no_active": {"es": "Ningún problema activo.", "en": "No active problem."},
    "clinic.history": {"es": "Historial de eventos", "en": "Event history"},
    "clinic.no_history": {"es": "Sin eventos.", "en": "No events."},
    "clinic.charts": {"es": "Gráficas", "en": "Charts"},
    "clinic.range": {"es": "Últimas {label}", "en": "Last {label}"},
    "clinic.ack": {"es": "Atender", "en": "Take charge"},
    "clinic.note": {"es": "Nota", "en": "Note"},
    "clinic.acked": {"es": "Atendido por {user}, {time}", "en": "Taken by {user}, {time}"},
    "clinic.ack_readonly": {"es": "(solo los operadores pueden atender)",
                            "en": "(only operators can take charge)"},
    "col.event": {"es": "Evento", "en": "Event"},
    "col.device": {"es": "Equipo", "en": "Device"},
    "col.start": {"es": "Inicio", "en": "Start"},
    "col.end": {"es": "Fin", "en": "End"},
    "col.duration": {"es": "Duración", "en": "Duration"},
    "kind.raise": {"es": "inicio", "en": "began"},
    "kind.clear": {"es": "fin", "en": "ended"},
    "kind.flapping": {"es": "intermitente", "en": "flapping"},
    "event.estimated": {"es": "(estimado)", "en": "(estimated)"},
    "chart.input_voltage": {"es": "Voltaje de entrada (V)", "en": "Input voltage (V)"},
    "chart.battery": {"es": "Carga de batería (%)", "en": "Battery charge (%)"},
    "chart.wan_latency": {"es": "Latencia de internet (ms)", "en": "Internet latency (ms)"},
    "chart.wan_loss": {"es": "Pérdida de internet (%)", "en": "Internet loss (%)"},
    "chart.traffic": {"es": "Tráfico WAN (bit/s, entrada y salida)",
                      "en": "WAN traffic (bit/s, in and out)"},
    "chart.no_data": {"es": "sin datos", "en": "no data"},
    "chart.range": {"es": "mín. {lo} · máx. {hi}", "en": "min {lo} · max {hi}"},
    # -- changes to many clinics and commands (central.rollout, central.commands) ------------
    "nav.rollouts": {"es": "Cambios", "en": "Rollouts"},
    "nav.commands": {"es": "Comandos", "en": "Commands"},
    "rollouts.title": {"es": "Cambios escalonados", "en": "Staged rollouts"},
    "rollouts.how": {"es": "Se firman y se crean en la computadora del operador con «clinic-central rollout create» (o «clinic-agent fleet sign»); este servidor nunca tiene la llave privada. Un operador puede iniciar aquí un cambio creado; revertir sigue en la línea de comandos.",
                     "en": "Signed and created on the operator's machine with \"clinic-central rollout create\" (or \"clinic-agent fleet sign\"); this server never holds the private key. An operator may start a created rollout here; rolling back stays on the command line."},
    "rollouts.none": {"es": "Ningún cambio todavía.", "en": "No rollout yet."},
    "rollout.title": {"es": "Cambio {id}: versión {version} ({kind})", "en": "Rollout {id}: version {version} ({kind})"},
    "rollout.meta": {"es": "Creado por {who}, {time}. Canario {canary} %, se detiene con más de {fail} % de fallas.",
                     "en": "Created by {who}, {time}. Canary {canary} %, stops above {fail} % failures."},
    "rollout.stopped": {"es": "Detenido: {why}", "en": "Stopped: {why}"},
    "rollout.actions": {"es": "Quién hizo qué", "en": "Who did what"},
    "rollout.start": {"es": "Iniciar (canario primero)", "en": "Start (canary first)"},
    "rollout.start_how": {"es": "Publica el cambio firmado a las clínicas canario y, si lo aplican, al resto; se detiene solo si demasiadas lo rechazan. Queda registrado a su nombre.",
                          "en": "Publishes the signed change to the canary clinics and, if they apply it, to the rest; stops by itself if too many refuse it. Recorded under your name."},
    "rollout.running": {"es": "En curso en este servidor; la página se actualiza sola.",
                        "en": "Running on this server; the page refreshes by itself."},
    "rollout.run_error": {"es": "No se pudo continuar: {why}", "en": "Could not carry on: {why}"},
    "rollout.no_broker": {"es": "Este servidor no tiene cuenta del broker para publicar cambios (--broker-username); use «clinic-central rollout start».",
                          "en": "This server has no broker account to publish changes (--broker-username); use \"clinic-central rollout start\"."},
    "rollout.not_startable": {"es": "Solo se inicia aquí un cambio creado y no iniciado (este está {state}); «clinic-central rollout start» lo reanuda.",
                              "en": "Only a created, not yet started rollout is started here (this one is {state}); \"clinic-central rollout start\" resumes it."},
    "col.id": {"es": "N.º", "en": "No."},
    "col.created": {"es": "Creado", "en": "Created"},
    "col.by": {"es": "Por", "en": "By"},
    "col.version": {"es": "Versión", "en": "Version"},
    "col.state": {"es": "Estado", "en": "State"},
    "col.stage": {"es": "Etapa", "en": "Stage"},
    "col.sites": {"es": "Clínicas", "en": "Clinics"},
    "col.reason": {"es": "Motivo", "en": "Reason"},
    "col.sent": {"es": "Enviado", "en": "Sent"},
    "col.outcome": {"es": "Resultado", "en": "Outcome"},
    "col.command": {"es": "Comando", "en": "Command"},
    "col.answer": {"es": "Respuesta", "en": "Answer"},
    "col.action": {"es": "Acción", "en": "Action"},
    "stage.1": {"es": "canario", "en": "canary"},
    "stage.2": {"es": "resto", "en": "the rest"},
    "rstate.created": {"es": "creado", "en": "created"},
    "rstate.canary": {"es": "en canario", "en": "canary"},
    "rstate.rest": {"es": "en el resto", "en": "the rest"},
    "rstate.done": {"es": "terminado", "en": "done"},
    "rstate.stopped": {"es": "detenido", "en": "stopped"},
    "sstate.pending": {"es": "pendiente", "en": "pending"},
    "sstate.sent": {"es": "enviado", "en": "sent"},
    "sstate.applied": {"es": "aplicado", "en": "applied"},
    "sstate.rejected": {"es": "rechazado", "en": "rejected"},
    "sstate.rolled_back": {"es": "revertido por la clínica", "en": "rolled back by the clinic"},
    "sstate.no_answer": {"es": "sin respuesta", "en": "no answer"},
    "sstate.withdrawn": {"es": "retirado", "en": "withdrawn"},
    "sstate.reverting": {"es": "revirtiendo", "en": "reverting"},
    "sstate.reverted": {"es": "revertido", "en": "reverted"},
    "sstate.revert_refused": {"es": "reversión rechazada", "en": "revert refused"},
    "sstate.revert_no_answer": {"es": "reversión sin respuesta", "en": "revert not answered"},
    "commands.title": {"es": "Comandos enviados y respuestas guardadas", "en": "Commands sent and answers kept"},
    "commands.for": {"es": "Clínica {site}", "en": "Clinic {site}"},
    "commands.none": {"es": "Ningún comando.", "en": "No command."},
    "commands.ok": {"es": "bien", "en": "ok"},
    "commands.failed": {"es": "falló", "en": "failed"},
    "commands.waiting": {"es": "sin respuesta aún", "en": "no answer yet"},
    # -- condition names (docs/events.md) ---------------------------------------------------
    "cond.mains_lost": {"es": "Sin red eléctrica", "en": "Mains lost"},
    "cond.generator_failed": {"es": "Falla del generador", "en": "Generator failed"},
    "cond.battery_low": {"es": "Batería baja", "en": "Battery low"},
    "cond.battery_replace": {"es": "Cambiar batería", "en": "Replace battery"},
    "cond.battery_fault": {"es": "Falla de batería", "en": "Battery fault"},
    "cond.ups_fault": {"es": "Falla del UPS", "en": "UPS fault"},
    "cond.overload": {"es": "Sobrecarga", "en": "Overload"},
    "cond.bypass": {"es": "UPS en bypass", "en": "UPS on bypass"},
    "cond.voltage_low": {"es": "Voltaje bajo", "en": "Voltage low"},
    "cond.voltage_high": {"es": "Voltaje alto", "en": "Voltage high"},
    "cond.frequency_low": {"es": "Frecuencia baja", "en": "Frequency low"},
    "cond.frequency_high": {"es": "Frecuencia alta", "en": "Frequency high"},
    "cond.wan_down": {"es": "Internet caído", "en": "Internet down"},
    "cond.wan_degraded": {"es": "Internet degradado", "en": "Internet degraded"},
    "cond.device_unreachable": {"es": "Equipo sin respuesta", "en": "Device not answering"},
    "cond.disk_full": {"es": "Disco lleno", "en": "Disk full"},
    "cond.buffer_dropping": {"es": "Se pierden lecturas", "en": "Readings being dropped"},
    "cond.clock_unsynced": {"es": "Reloj sin sincronizar", "en": "Clock not synchronised"},
    "cond.clock_stepped": {"es": "El reloj saltó", "en": "Clock stepped"},
}


def pick_language(cookie: str | None, accept: str | None) -> str:
    """The ``lang`` cookie (the page's toggle), else Accept-Language, else Spanish."""
    if cookie in LANGUAGES:
        return cookie
    best: tuple[float, str] | None = None
    for part in (accept or "")[:500].split(","):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower()[:2]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if lang in LANGUAGES and (best is None or q > best[0]):
            best = (q, lang)
    return best[1] if best and best[0] > 0 else DEFAULT_LANGUAGE


class Words:
    """The page's words and formats in one language and time zone."""

    def __init__(self, lang: str, tz: tzinfo) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        self.tz = tz

    def __call__(self, key: str, **kw: object) -> str:
        entry = MESSAGES.get(key)
        if entry is None:
            return key
        return entry[self.lang].format(**kw)

    def cond(self, cond: str) -> str:
        """A condition's name: ``voltage_low.l2`` -> "Voltaje bajo (l2)"; unknown codes as is."""
        base, _, part = cond.partition(".")
        name = self(f"cond.{base}") if f"cond.{base}" in MESSAGES else base
        return f"{name} ({part})" if part else name

    def time(self, t: datetime | None, now: datetime | None = None) -> str:
        """``14:03`` today, ``01/12 14:03`` another day (in the page's time zone)."""
        if t is None:
            return self("unknown")
        local = t.astimezone(self.tz)
        if now is not None and local.date() == now.astimezone(self.tz).date():
            return local.strftime("%H:%M")
        return local.strftime("%d/%m/%Y %H:%M")

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return self("unknown")
        m = int(max(seconds, 0) // 60)
        if m == 0:
            return self("dur.lt_min")
        if m < 60:
            return self("dur.min", n=m)
        if m < 24 * 60:
            return self("dur.h_min", h=m // 60, m=m % 60)
        return self("dur.d_h", d=m // 1440, h=(m % 1440) // 60)

    def code(self, prefix: str, code: object) -> str:
        """A state code in words where the catalogue has it, else the code as is."""
        key = f"{prefix}.{code}"
        return self(key) if key in MESSAGES else str(code)

    def epoch(self, t: float | None, now: datetime | None = None) -> str:
        return self.time(None if t is None else datetime.fromtimestamp(t, self.tz), now)

    def since(self, t: datetime | None, now: datetime) -> str:
        if t is None:
            return self("since.never")
        return self("since.at", time=self.time(t, now),
                    dur=self.duration((now - t).total_seconds()))
