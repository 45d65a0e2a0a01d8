from pipeline.guard import import_beam_quietly

import_beam_quietly()   # before apache_beam is imported: no "apitools not found" warning
