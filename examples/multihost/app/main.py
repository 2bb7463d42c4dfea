"""python-app: a small web app that counts its visits in MariaDB.

It stands in for the Flask tutorial app that pyinfra's python-web-app
example clones from GitHub: the same shape (a Python process serving HTTP,
its database on another host), with only Debian packages (python3,
python3-pymysql) and no network beyond the two hosts.

Settings come from the environment, as the systemd unit (or the sysvinit
script) sets them: APP_PORT, DB_HOST, DB_PORT, DB_NAME, DB_USER, and
DB_PASSWORD_FILE, a file holding the password (never an environment
variable, which /proc/PID/environ and `systemctl show` would reveal).
"""

import html
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pymysql

VERSION = "1"


def connect():
    with open(os.environ["DB_PASSWORD_FILE"], encoding="utf-8") as f:
        password = f.read().rstrip("\n")
    return pymysql.connect(
        host=os.environ["DB_HOST"],
        port=int(os.environ.get("DB_PORT", "3306")),
        user=os.environ["DB_USER"],
        password=password,
        database=os.environ["DB_NAME"],
        connect_timeout=5,
        autocommit=True,
    )


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/":
            self.send_error(404)
            return
        try:
            db = connect()
            try:
                with db.cursor() as c:
                    c.execute("CREATE TABLE IF NOT EXISTS visits (id INT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)")
                    c.execute("INSERT INTO visits () VALUES ()")
                    c.execute("SELECT COUNT(*), VERSION(), CURRENT_USER() FROM visits")
                    count, version, user = c.fetchone()
            finally:
                db.close()
        except Exception as e:  # the page says why, the status says it failed
            self.reply(503, "python-app %s: no database: %s\n" % (VERSION, e))
            return
        self.reply(200, "python-app %s: visit %d, counted by MariaDB %s at %s as %s\n" % (
            VERSION, count, version, os.environ["DB_HOST"], user))

    def reply(self, status, text):
        body = ("<!doctype html>\n<title>python-app</title>\n<p>%s</p>\n" % html.escape(text.strip())).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(os.environ.get("APP_PORT", "5000"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
