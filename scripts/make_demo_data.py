"""Write the demo documents in data/ (all text written by this team). Run: python scripts/make_demo_data.py

Produces a Spanish drug leaflet PDF with a ruled dosage table (age group x route), an English
device manual PDF, a Spanish internal policy in Markdown and an English FAQ in DOCX.
The generated files are committed; this script documents how they were made (needs reportlab).
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"


def _pdf(path: Path, pages: list[list[object]], title: str) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.platypus import PageBreak, SimpleDocTemplate

    doc = SimpleDocTemplate(str(path), pagesize=A4, title=title, author="local-rag team",
                            creator="scripts/make_demo_data.py", invariant=1)
    story: list[object] = []
    for i, page in enumerate(pages):
        if i:
            story.append(PageBreak())
        story.extend(page)
    doc.build(story)


def leaflet() -> None:
    from reportlab.lib import colors
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

    s = getSampleStyleSheet()
    p1 = [
        Paragraph("Prospecto: información para el usuario", s["Title"]),
        Paragraph("Paracetamol Demo 500 mg comprimidos", s["Heading2"]),
        Paragraph("1. Qué es Paracetamol Demo y para qué se utiliza", s["Heading3"]),
        Paragraph("El paracetamol es un analgésico y antipirético. Se utiliza para el tratamiento sintomático "
                  "del dolor de intensidad leve a moderada y de la fiebre. No debe utilizarse durante más de "
                  "3 días para la fiebre ni más de 5 días para el dolor sin consultar al médico.", s["BodyText"]),
        Paragraph("2. Qué necesita saber antes de tomar Paracetamol Demo", s["Heading3"]),
        Paragraph("No tome este medicamento si es alérgico al paracetamol. Los pacientes con enfermedad grave "
                  "del hígado no deben tomar paracetamol. El consumo de alcohol durante el tratamiento aumenta "
                  "el riesgo de daño hepático. Consulte a su médico si está embarazada o en periodo de "
                  "lactancia.", s["BodyText"]),
        Paragraph("Conservación: mantener por debajo de 25 ºC, en el embalaje original y fuera de la vista y "
                  "del alcance de los niños.", s["BodyText"]),
    ]
    rows = [
        ["Grupo de edad", "Vía oral o rectal (paracetamol)", "Vía intravenosa (propacetamol)"],
        ["Adultos", "500-1000 mg cada 6-8 h, máximo 4 g al día", "1-2 g cada 4-6 h, máximo 8 g al día"],
        ["Adolescentes de 12 a 15 años", "500 mg cada 4-6 h, máximo 2 g al día",
         "1 g cada 6 h, solo con más de 50 kg"],
        ["Niños de 3 a 11 años", "10-15 mg/kg cada 4-6 h, máximo 60 mg/kg al día", "No recomendado"],
        ["Menores de 3 años", "Solo por indicación del pediatra", "No recomendado"],
    ]
    table = Table([[Paragraph(c, s["BodyText"]) for c in r] for r in rows], colWidths=[120, 175, 175])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.8, colors.black),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    p2 = [
        Paragraph("3. Cómo tomar Paracetamol Demo", s["Heading3"]),
        Paragraph("Siga exactamente las instrucciones de administración de este medicamento. La dosis depende "
                  "de la edad y de la vía de administración, según la tabla siguiente.", s["BodyText"]),
        Spacer(1, 8),
        Paragraph("Tabla 1. Posología por grupo de edad y vía de administración", s["Heading4"]),
        table,
        Spacer(1, 8),
        Paragraph("Deje pasar al menos 4 horas entre dos tomas. Si toma más paracetamol del que debe, consulte "
                  "inmediatamente a su médico o llame al Servicio de Información Toxicológica, teléfono "
                  "915 620 420, aunque no note ningún síntoma.", s["BodyText"]),
        Paragraph("4. Posibles efectos adversos", s["Heading3"]),
        Paragraph("Los efectos adversos son raros: pueden aparecer reacciones en la piel, malestar o bajada de "
                  "la tensión. Muy raramente se han descrito alteraciones de la sangre y daño en el hígado con "
                  "dosis altas o tratamientos prolongados.", s["BodyText"]),
    ]
    _pdf(DATA / "prospecto_paracetamol.pdf", [p1, p2], "Prospecto Paracetamol Demo")


def manual() -> None:
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph

    s = getSampleStyleSheet()
    p1 = [
        Paragraph("ThermoLink T200 Smart Thermostat: User Manual", s["Title"]),
        Paragraph("1. Installation", s["Heading2"]),
        Paragraph("Switch off the heating system at the circuit breaker before removing the old thermostat. "
                  "The T200 needs a 24 V AC common wire (C wire); it does not run on batteries alone. "
                  "Mount the base plate 1.5 metres above the floor, away from windows and radiators.",
                  s["BodyText"]),
        Paragraph("2. Wi-Fi pairing", s["Heading2"]),
        Paragraph("Hold the MENU button for 5 seconds until the display shows PAIR. The T200 connects only to "
                  "2.4 GHz networks; 5 GHz networks are not supported. Pairing times out after 3 minutes.",
                  s["BodyText"]),
    ]
    p2 = [
        Paragraph("3. Schedules and eco mode", s["Heading2"]),
        Paragraph("Eco mode lowers the set point to 17 degrees Celsius when nobody is at home. The default "
                  "comfort temperature is 21 degrees Celsius. Up to 6 schedule blocks can be set per day.",
                  s["BodyText"]),
        Paragraph("4. Troubleshooting", s["Heading2"]),
        Paragraph("Error E4 means the temperature sensor is faulty; contact support. Error E7 means the C wire "
                  "is not connected. To restore factory settings, hold MENU and the down arrow together for "
                  "10 seconds. The warranty covers manufacturing defects for 2 years from the date of purchase.",
                  s["BodyText"]),
    ]
    _pdf(DATA / "thermolink_t200_manual.pdf", [p1, p2], "ThermoLink T200 manual")


POLICY_MD = """# Política de teletrabajo de Ejemplo S.L.

## Artículo 1. Ámbito de aplicación

Esta política se aplica a todas las personas empleadas con contrato indefinido y con más de seis meses de
antigüedad en la empresa.

## Artículo 2. Días de teletrabajo

Cada persona puede teletrabajar hasta tres días por semana. Los martes son presenciales para todos los
equipos, salvo autorización expresa de la dirección.

## Artículo 3. Compensación de gastos

La empresa abona 35 euros al mes en concepto de gastos de conexión y suministros a quien teletrabaje al
menos ocho días en el mes. El pago se realiza en la nómina del mes siguiente.

## Artículo 4. Equipamiento

La empresa entrega un ordenador portátil y una silla ergonómica. El equipamiento debe devolverse en un
plazo de quince días tras el fin de la relación laboral.
"""


def policy() -> None:
    (DATA / "politica_teletrabajo.md").write_text(POLICY_MD, encoding="utf-8")


def faq_docx() -> None:
    import docx

    document = docx.Document()
    document.core_properties.author = "local-rag team"
    document.add_heading("Clinic visitor FAQ", level=1)
    document.add_paragraph("Visiting hours are from 10:00 to 20:00 every day, including public holidays.")
    document.add_paragraph("Each patient may receive at most two visitors at the same time. Children under 12 "
                           "must be accompanied by an adult.")
    document.add_heading("Parking", level=2)
    document.add_paragraph("The visitor car park is free for the first 30 minutes and then costs 1.20 euros per "
                           "hour.")
    document.save(str(DATA / "clinic_visitor_faq.docx"))


if __name__ == "__main__":
    DATA.mkdir(exist_ok=True)
    leaflet()
    manual()
    policy()
    faq_docx()
    print("demo documents written to", DATA)
