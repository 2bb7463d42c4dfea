# Run as root after 40-pip.star.
/srv/venv/bin/python -c '
import app_star, dep_star, hello_star, odd_name_pkg
assert hello_star.VERSION == "1.1", hello_star.VERSION
'
/srv/venv/bin/python -m pip list --format=freeze > /tmp/pip-list
grep -qx 'app-star==2.0' /tmp/pip-list
grep -qx 'dep-star==0.1' /tmp/pip-list
grep -qx 'hello-star==1.1' /tmp/pip-list
grep -qx 'Odd_Name.pkg==2.0' /tmp/pip-list
grep -q '^include-system-site-packages = false$' /srv/venv/pyvenv.cfg
