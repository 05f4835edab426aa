"""The command line: `python scripts/main.py {fit,validate,test,predict} --config configs/<x>.yaml`.

Set LOAN_DEBUG=1 to see the traceback behind an error message.
"""

from lightning_modules.cli import cli_main, run_entry_point

if __name__ == "__main__":
    run_entry_point(cli_main)
