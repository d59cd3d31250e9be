"""The exceptions a user sees as a sentence instead of a traceback."""


class KmlpError(Exception):
    """A problem with the user's input or environment; the CLI prints it and exits 1."""


class Terminated(BaseException):
    """SIGTERM (as SLURM and Snakemake send it), raised where the process is, so that
    it unwinds like Ctrl-C: ``finally`` blocks run and temporary files are removed."""

    def __init__(self, signum: int):
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum
