"""Runtimes that run database servers on storage images, behind one contract (`base.Runtime`)."""
