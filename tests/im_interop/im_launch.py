"""Starts IM 2.0.0's REST service on a loopback port with a sqlite file.

IM reads its settings from im.cfg files at import time; setting them on the
Config class before the service module is imported keeps the venv untouched.
Usage: python im_launch.py PORT DATA_DB_FILE LOG_FILE
"""
import sys

from IM.config import Config

port, db_file, log_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
Config.REST_ADDRESS = "127.0.0.1"
Config.REST_PORT = port
Config.DATA_DB = "sqlite://" + db_file
Config.LOG_FILE = log_file
Config.LOG_LEVEL = "INFO"
Config.BOOT_MODE = 0
# IM's main() parses the command line: leave it only the program name.
sys.argv = sys.argv[:1]

from IM.im_service import main  # noqa: E402  (must follow the settings)

main()
