# One image for every role: worker, beat, and one-off commands (newsletter send, import, ...).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY newsletter ./newsletter
COPY workers ./workers
COPY templates ./templates
# Editable, so the package finds templates/email beside it as in a checkout.
RUN pip install --no-cache-dir -e .

# Celery refuses to run as root without being told; workers need no privileges.
RUN useradd --create-home newsletter
USER newsletter

CMD ["newsletter", "worker"]
