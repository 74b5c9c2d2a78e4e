# Freqtrade's image with statarb added, the way Freqtrade documents adding dependencies
# (docker/Dockerfile.custom): a derived image that pip-installs as the image's user.
# Build the wheel first: python -m build --wheel   (see docs/install.md)
FROM freqtradeorg/freqtrade:2026.9

COPY dist/statarb-0.1.0-py3-none-any.whl /tmp/
RUN pip install --user --no-cache-dir --quiet freqtrade==2026.9 /tmp/statarb-0.1.0-py3-none-any.whl
# Registers the pairlist (a .pth file beside the installed package) and prepares the image's
# own user_data; docker-compose.yml runs it again on the mounted user_data.
RUN freqtrade create-userdir --userdir user_data && statarb-setup --userdir user_data
