"""Records to tables, figures and a single-file HTML report."""
