def test_code_is_tested():
    from {{ cookiecutter.module_name }}.config import DATA_DIR

    assert DATA_DIR.name == "data"
