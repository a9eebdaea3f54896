# Sourced by the other scripts: make .venv with Python 3.11+ and install a requirements file
# into it when that file changed since the last install.
requirements="$1"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
stamp=".venv/.installed-$(basename "$requirements")"
if [ ! -f "$stamp" ] || [ -n "$(find requirements*.txt -newer "$stamp")" ]; then
    .venv/bin/python -m pip install --quiet -r "$requirements"
    touch "$stamp"
fi
# shellcheck disable=SC1091
source .venv/bin/activate
