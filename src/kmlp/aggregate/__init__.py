"""The outputs: run files grouped into tables, figures, the LaTeX report and the record."""
